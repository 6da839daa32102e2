"""The GRU layer: ``GRUCell`` over time."""

from zoo.layers.gru_cell import GRUCell
from zoo.layers.recurrent import Recurrent
from zoo.registry import register_layer


@register_layer("gru")
class GRU(Recurrent):
    """The chapter's GRU over a sequence; matches ``keras.layers.GRU(reset_after=False)``.

    Args: ``units``, ``return_sequences``, ``return_state`` (see ``Recurrent``) and the
    keyword arguments of ``GRUCell`` (``reset_after`` defaults to False, the equation).

    Shapes: inputs [batch, time, features], mask [batch, time] → see ``Recurrent``.

    Example:
        >>> outputs, h = GRU(16, return_sequences=True, return_state=True)(ops.ones((2, 5, 3)))
    """

    cell_class = GRUCell
