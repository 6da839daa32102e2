"""The call contract shared by every sequence layer (``rnn``, ``gru``, ``lstm``,
``deep_rnn``, ``bidirectional``)."""

import keras


class SequenceLayer(keras.layers.Layer):
    """Base of the layers that read a sequence and keep a recurrent state.

    ``layer(inputs, mask=None, initial_state=None)`` returns ``outputs`` ([batch, time,
    output_units] with ``return_sequences``, else the last valid step [batch,
    output_units]); with ``return_state`` it returns ``[outputs, *states]``, the flat list
    of final states that ``initial_state`` also takes. The mask is passed on when
    sequences are returned.

    Subclasses define ``output_units``, ``state_size`` and ``call``, and use
    ``package_outputs`` to return.

    Args:
        return_sequences: return every step rather than the last. Defaults to False.
        return_state: also return the final states. Defaults to False.
    """

    def __init__(self, return_sequences=False, return_state=False, **kwargs):
        super().__init__(**kwargs)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.supports_masking = True

    @property
    def output_units(self):
        raise NotImplementedError

    @property
    def state_size(self):
        raise NotImplementedError

    def step(self, inputs, states):
        """One time step, for streaming inference: inputs [batch, features] and the flat
        state list → (outputs [batch, output_units], new states). A layer that must see
        the whole sequence (``bidirectional``) cannot stream and refuses."""
        raise ValueError(
            f"layer '{self.name}' ({type(self).__name__}) reads whole sequences and cannot "
            "run one step at a time"
        )

    def package_outputs(self, sequence, last, states):
        outputs = sequence if self.return_sequences else last
        return [outputs, *states] if self.return_state else outputs

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        return [output_mask] + [None] * len(self.state_size) if self.return_state else output_mask

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        batch = inputs_shape[0]
        units = self.output_units
        shape = (batch, inputs_shape[1], units) if self.return_sequences else (batch, units)
        if self.return_state:
            return [shape] + [(batch, size) for size in self.state_size]
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"return_sequences": self.return_sequences, "return_state": self.return_state}
        )
        return config
