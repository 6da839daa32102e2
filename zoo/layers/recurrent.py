"""Running a recurrent cell over a sequence."""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.recurrent_cell import RecurrentCell
from zoo.layers.sequence_layer import SequenceLayer


def scan_over_time(step, projected, states, mask=None):
    """Runs ``step(x_t, states) -> (h_t, states)`` over axis 1 of ``projected``.

    A masked step (mask False) leaves every state unchanged and outputs zeros.
    It is TensorFlow-specific, like the training-time pieces that feed it
    (``RecurrentProduct``, ``fused_loops``): ``keras.ops.scan`` keeps per-step outputs
    shaped like the carry and round-trips the carry through TensorArrays, which costs a
    third of the step time of a small LSTM on the CPU.

    Shapes: projected [batch, time, width], mask [batch, time] →
    (outputs [batch, time, units], final states).
    """
    time_major = tf.transpose(projected, [1, 0, 2])
    num_steps = tf.shape(time_major)[0]
    inputs = tf.TensorArray(time_major.dtype, size=num_steps).unstack(time_major)
    if mask is not None:
        mask_time_major = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (time, batch, 1)
        masks = tf.TensorArray(tf.bool, size=num_steps).unstack(mask_time_major)
    outputs = tf.TensorArray(time_major.dtype, size=num_steps)

    def body(t, states, outputs):
        output, new_states = step(inputs.read(t), states)
        if mask is not None:
            keep = masks.read(t)
            new_states = [
                tf.where(keep, new, old) for new, old in zip(new_states, states, strict=True)
            ]
            output = tf.where(keep, output, tf.zeros_like(output))
        return t + 1, new_states, outputs.write(t, output)

    _, final_states, outputs = tf.while_loop(
        lambda t, *_: t < num_steps, body, (tf.constant(0), list(states), outputs)
    )
    sequence = tf.transpose(outputs.stack(), [1, 0, 2])
    sequence.set_shape(projected.shape[:2].concatenate([None]))
    return sequence, final_states


class Recurrent(SequenceLayer):
    """A recurrent layer: one cell run over time. Base of ``rnn``, ``gru`` and ``lstm``.

    All sequence layers share one call contract, keyword for keyword that of Keras'
    recurrent layers: ``layer(inputs, mask=None, initial_state=None)`` returns
    ``outputs`` ([batch, time, units] with ``return_sequences``, else the last valid
    step [batch, units]); with ``return_state`` it returns ``[outputs, *states]``, the
    final state of every state tensor (h, or h and c), the same flat list that
    ``initial_state`` takes. Padded steps (mask False) leave the state unchanged and
    output zeros; the mask is passed on when sequences are returned.

    Subclasses name their cell in ``cell_class``; the cell's keyword arguments pass
    through the layer's constructor and come back in ``get_config``.

    Args:
        units: size of the hidden state.
        return_sequences: return every step rather than the last. Defaults to False.
        return_state: also return the final states. Defaults to False.
        dropout: while training, the fraction of input features dropped, with one mask
            per sequence for every step (variational dropout). Defaults to 0.
        recurrent_dropout: while training, the fraction of h_{t-1} dropped where it
            enters the recurrent products, one mask per sequence. Defaults to 0.
        weight_dropout: while training, the fraction of the recurrent kernel's entries
            dropped (DropConnect, Wan et al. 2013: the weight drop of AWD-LSTM), one
            mask per call shared by the batch and every step; the kept entries are
            scaled by 1 / (1 - rate). Defaults to 0.
        **kwargs: the cell's arguments (activation, initializers, ...) and the base
            layer's (name, dtype, ...).
    """

    cell_class = None

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        weight_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        cell_names = self._cell_argument_names()
        cell_kwargs = {key: value for key, value in kwargs.items() if key in cell_names}
        super().__init__(
            return_sequences,
            return_state,
            **{key: value for key, value in kwargs.items() if key not in cell_names},
        )
        rates = (
            ("dropout", dropout),
            ("recurrent_dropout", recurrent_dropout),
            ("weight_dropout", weight_dropout),
        )
        for name, rate in rates:
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
        self.cell = self.cell_class(units, **cell_kwargs)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.weight_dropout = float(weight_dropout)
        self.seed = seed
        self.seed_generator = (
            keras.random.SeedGenerator(seed)
            if dropout or recurrent_dropout or weight_dropout
            else None
        )

    @classmethod
    def _cell_argument_names(cls):
        names = set()
        for klass in cls.cell_class.__mro__:
            if "__init__" in vars(klass) and issubclass(klass, RecurrentCell):
                names.update(inspect.signature(klass.__init__).parameters)
        return names - {"self", "units", "kwargs"}

    @property
    def units(self):
        return self.cell.units

    @property
    def output_units(self):
        return self.cell.units

    @property
    def state_size(self):
        return self.cell.state_size

    def build(self, input_shape):
        self.cell.build(input_shape[:1] + input_shape[2:])

    def get_initial_state(self, batch_size):
        return self.cell.get_initial_state(batch_size)

    def call(self, inputs, mask=None, initial_state=None, training=None):
        if initial_state is None:
            states = self.cell.get_initial_state(ops.shape(inputs)[0])
        else:
            states = (
                list(initial_state) if isinstance(initial_state, list | tuple) else [initial_state]
            )
        if training and self.dropout:
            inputs = inputs * self._dropout_mask(inputs, self.dropout)[:, None, :]
        recurrent_mask = None
        if training and self.recurrent_dropout:
            recurrent_mask = self._dropout_mask(states[0], self.recurrent_dropout)
        kernel = None  # the cell's own recurrent kernel
        if training and self.weight_dropout:
            kernel = self.cell.recurrent_kernel * self._weight_dropout_mask()
        result = None
        if training:
            result = self.cell.native_sequence(inputs, states, recurrent_mask, mask, kernel)
        projected = None if result is not None else self.cell.project_inputs(inputs)
        if training and result is None:
            result = self.cell.fused_sequence(projected, states, recurrent_mask, mask, kernel)
        if result is None:
            # Made once, outside the loop; while training their gradient uses a stored Wᵀ.
            products = self.cell.recurrent_products(bool(training), kernel)

            def transition(projected_t, step_states):
                return self.cell.transition(projected_t, step_states, recurrent_mask, products)

            result = scan_over_time(transition, projected, states, mask)
        sequence, final_states = result
        # h_T is the first state of every cell; masked steps kept it at the last valid step.
        return self.package_outputs(sequence, final_states[0], final_states)

    def step(self, inputs, states):
        return self.cell(inputs, list(states))

    def _dropout_mask(self, like, rate):
        """A [batch, width] mask of zeros and 1 / (1 - rate) for the batch and last axis of
        ``like``, drawn once per call: every time step shares it."""
        ones = ops.ones((ops.shape(like)[0], ops.shape(like)[-1]), dtype=like.dtype)
        return keras.random.dropout(ones, rate, seed=self.seed_generator)

    def _weight_dropout_mask(self):
        """A mask of zeros and 1 / (1 - rate) shaped like the recurrent kernel."""
        ones = ops.ones(ops.shape(self.cell.recurrent_kernel), dtype=self.compute_dtype)
        return keras.random.dropout(ones, self.weight_dropout, seed=self.seed_generator)

    def get_config(self):
        config = super().get_config()
        config.update(self.cell.argument_config())
        config.update(
            {
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "weight_dropout": self.weight_dropout,
                "seed": self.seed,
            }
        )
        return config
