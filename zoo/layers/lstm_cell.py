"""The long short-term memory cell."""

import keras
from keras import ops

from zoo.layers import native
from zoo.layers.fused_loops import LSTMLoop
from zoo.layers.recurrent_cell import RecurrentCell
from zoo.registry import register_layer


@register_layer("lstm_cell")
class LSTMCell(RecurrentCell):
    """The chapter's LSTM, gate order (i, f, c, o) as in ``keras.layers.LSTMCell``:

        I_t = σ(X_t W_xi + H_{t-1} W_hi + b_i)
        F_t = σ(X_t W_xf + H_{t-1} W_hf + b_f)
        O_t = σ(X_t W_xo + H_{t-1} W_ho + b_o)
        C̃_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)
        C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
        H_t = O_t ⊙ tanh(C_t)

    Args: as ``RecurrentCell``, plus
        recurrent_activation: σ. Defaults to "sigmoid".
        unit_forget_bias: start b_f at one, so the cell remembers at first. Defaults
            to True.

    Shapes: inputs [batch, features], states [H, C], each [batch, units] → H_t.

    Example:
        >>> cell = LSTMCell(8)
        >>> h, [h_state, c_state] = cell(ops.ones((2, 3)), cell.get_initial_state(2))
    """

    num_gates = 4
    fused_loop = LSTMLoop
    native_layer = native.lstm_layer

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    @property
    def state_size(self):
        return [self.units, self.units]

    def bias_initializer_for(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def transition(self, projected, states, recurrent_mask=None, products=None):
        (recurrent,) = products or self.recurrent_products()
        h_prev, c_prev = states
        h_prev = self.masked(h_prev, recurrent_mask)  # h_{t-1} is used only in the product
        gates = projected + recurrent(h_prev)  # (batch, 4 * units)
        # One split rather than four slices: its gradient is one concatenation, where
        # each slice's gradient would pad a full-width zero tensor.
        i, f, candidate, o = ops.split(gates, 4, axis=-1)
        i, f, o = (self.recurrent_activation(gate) for gate in (i, f, o))
        candidate = self.activation(candidate)
        c = f * c_prev + i * candidate
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config
