"""The RNN layer: ``RNNCell`` over time."""

from zoo.layers.recurrent import Recurrent
from zoo.layers.rnn_cell import RNNCell
from zoo.registry import register_layer


@register_layer("rnn")
class RNN(Recurrent):
    """h_t = φ(x_t W_xh + h_{t-1} W_hh + b_h) over a sequence; matches ``keras.layers.SimpleRNN``.

    Args: ``units``, ``return_sequences``, ``return_state`` (see ``Recurrent``) and the
    keyword arguments of ``RNNCell``.

    Shapes: inputs [batch, time, features], mask [batch, time] → see ``Recurrent``.

    Example:
        >>> outputs, h = RNN(16, return_sequences=True, return_state=True)(ops.ones((2, 5, 3)))
    """

    cell_class = RNNCell
