"""The LSTM layer: ``LSTMCell`` over time."""

from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.recurrent import Recurrent
from zoo.registry import register_layer


@register_layer("lstm")
class LSTM(Recurrent):
    """The chapter's LSTM over a sequence; matches ``keras.layers.LSTM``.

    Args: ``units``, ``return_sequences``, ``return_state`` (see ``Recurrent``) and the
    keyword arguments of ``LSTMCell``.

    Shapes: inputs [batch, time, features], mask [batch, time] → see ``Recurrent``;
    with ``return_state`` the states are [H_T, C_T].

    Example:
        >>> outputs, h, c = LSTM(16, return_sequences=True, return_state=True)(ops.ones((2, 5, 3)))
    """

    cell_class = LSTMCell
