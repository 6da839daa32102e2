"""The latent-variable RNN cell."""

from zoo.layers.recurrent_cell import RecurrentCell
from zoo.registry import register_layer


@register_layer("rnn_cell")
class RNNCell(RecurrentCell):
    """The chapter's RNN with hidden state: h_t = φ(x_t W_xh + h_{t-1} W_hh + b_h).

    Args: as ``RecurrentCell`` (φ defaults to tanh). Weights match
    ``keras.layers.SimpleRNNCell``.

    Shapes: inputs [batch, features], states [[batch, units]] → h_t [batch, units].

    Example:
        >>> cell = RNNCell(8)
        >>> h, [state] = cell(ops.ones((2, 3)), [ops.zeros((2, 8))])
    """

    num_gates = 1

    def transition(self, projected, states, recurrent_mask=None, products=None):
        (recurrent,) = products or self.recurrent_products()
        (h_prev,) = states
        h_prev = self.masked(h_prev, recurrent_mask)  # h_{t-1} is used only in the product
        h = self.activation(projected + recurrent(h_prev))
        return h, [h]
