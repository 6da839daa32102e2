"""SavedModel exports and the decoding backends that run them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class SavedModelLanguageModel:
    """A SavedModel's ``step`` signature as a decoding backend."""

    def __init__(self, path, state_sizes):
        self.loaded = tf.saved_model.load(str(path))
        self.state_sizes = state_sizes
        self._step = self.loaded.signatures["step"]

    def initial_states(self, batch_size):
        return [np.zeros((batch_size, size), np.float32) for size in self.state_sizes]

    def step(self, tokens, states):
        named = {f"state_{i}": tf.constant(s) for i, s in enumerate(states)}
        outputs = self._step(tokens=tf.constant(tokens, tf.int32), **named)
        return outputs["logits"].numpy(), [
            outputs[f"state_{i}"].numpy() for i in range(len(states))
        ]


class SavedModelTranslator:
    """A SavedModel's ``encode`` and ``decode_step`` signatures as a decoding backend."""

    preferred_batch = 256

    def __init__(self, path, num_states):
        self.loaded = tf.saved_model.load(str(path))
        self.num_states = num_states
        self._encode = self.loaded.signatures["encode"]
        self._decode_step = self.loaded.signatures["decode_step"]

    def encode(self, ids, valid_len):
        outputs = self._encode(
            source=tf.constant(ids, tf.int32), valid_len=tf.constant(valid_len, tf.int32)
        )
        return {name: value.numpy() for name, value in outputs.items()}

    def decode_step(self, tokens, state):
        outputs = self._decode_step(
            token=tf.constant(tokens, tf.int32),
            **{name: tf.constant(value) for name, value in state.items()},
        )
        new_states = {f"state_{i}": outputs[f"state_{i}"].numpy() for i in range(self.num_states)}
        return outputs["log_probs"].numpy(), {**state, **new_states}
