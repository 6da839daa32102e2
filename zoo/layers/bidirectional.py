"""Bidirectional recurrent encoder."""

from keras import ops

from zoo.layers.deep_rnn import sequence_layer
from zoo.layers.sequence_layer import SequenceLayer
from zoo.registry import register_layer


def reverse_valid_steps(sequence, mask):
    """Reverses each sequence's valid prefix in time, leaving the padding at the end.

    Shapes: sequence [batch, time, features], mask [batch, time] or None.
    """
    if mask is None:
        return ops.flip(sequence, axis=1)
    num_steps = ops.shape(sequence)[1]
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)  # (batch, 1)
    steps = ops.arange(num_steps, dtype="int32")[None, :]  # (1, time)
    source = ops.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, time)
    source = ops.broadcast_to(source[:, :, None], ops.shape(sequence))
    return ops.take_along_axis(sequence, source, axis=1)


@register_layer("bidirectional")
class Bidirectional(SequenceLayer):
    """A forward and a backward pass of a sequence layer, merged; for encoders.

    The backward layer reads each sequence's valid steps in reverse order (padding
    stays at the end, so it never sees padding first), and its outputs are put back
    in forward order, so step t merges →h_t and ←h_t. Follows the ``Recurrent`` call
    contract; the state is the forward layer's state followed by the backward's.

    Args:
        units: hidden size of each direction.
        layer: registered name of the sequence layer. Defaults to "gru".
        merge_mode: "concat" ([..., 2 * units]) or "sum". Defaults to "concat".
        return_sequences: return every step. Defaults to False.
        return_state: also return the final states. Defaults to False.
        layer_kwargs: further keyword arguments of both layers. Defaults to None.

    Shapes: inputs [batch, time, features], mask [batch, time] →
    [batch, time, 2 * units] (concat) or [batch, time, units] (sum).

    Example:
        >>> outputs = Bidirectional(16, layer="lstm", return_sequences=True)(ops.ones((2, 5, 3)))
    """

    merge_modes = ("concat", "sum")

    def __init__(
        self,
        units,
        layer="gru",
        merge_mode="concat",
        return_sequences=False,
        return_state=False,
        layer_kwargs=None,
        **kwargs,
    ):
        super().__init__(return_sequences, return_state, **kwargs)
        if merge_mode not in self.merge_modes:
            raise ValueError(f"merge_mode must be one of {self.merge_modes}, got {merge_mode!r}")
        self.units = units
        self.layer = layer
        self.merge_mode = merge_mode
        self.layer_kwargs = dict(layer_kwargs or {})
        self.forward_layer, self.backward_layer = (
            sequence_layer(
                layer,
                units,
                self.layer_kwargs,
                return_sequences=True,
                return_state=True,
                name=direction,
            )
            for direction in ("forward", "backward")
        )

    @property
    def output_units(self):
        return 2 * self.units if self.merge_mode == "concat" else self.units

    @property
    def state_size(self):
        return list(self.forward_layer.state_size) + list(self.backward_layer.state_size)

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    def get_initial_state(self, batch_size):
        return self.forward_layer.get_initial_state(
            batch_size
        ) + self.backward_layer.get_initial_state(batch_size)

    def merge(self, forward, backward):
        return (
            ops.concatenate([forward, backward], axis=-1)
            if self.merge_mode == "concat"
            else forward + backward
        )

    def call(self, inputs, mask=None, initial_state=None, training=None):
        width = len(self.forward_layer.state_size)
        forward_state = backward_state = None
        if initial_state is not None:
            forward_state, backward_state = list(initial_state[:width]), list(initial_state[width:])
        forward, *forward_states = self.forward_layer(
            inputs, mask=mask, initial_state=forward_state
        )
        backward, *backward_states = self.backward_layer(
            reverse_valid_steps(inputs, mask), mask=mask, initial_state=backward_state
        )
        sequence = (
            self.merge(forward, reverse_valid_steps(backward, mask))
            if self.return_sequences
            else None
        )
        last = self.merge(forward_states[0], backward_states[0])
        return self.package_outputs(sequence, last, forward_states + backward_states)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "layer": self.layer,
                "merge_mode": self.merge_mode,
                "layer_kwargs": self.layer_kwargs,
            }
        )
        return config
