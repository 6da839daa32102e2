"""The Keras models as decoding backends: their ``step``, ``encode`` and ``decode_step``
in ``tf.function``s, NumPy in, tensors out."""

from __future__ import annotations

import tensorflow as tf


class KerasLanguageModel:
    """``LanguageModel.step`` for ``zoo.decoding.generate_tokens``."""

    def __init__(self, model):
        self.model = model
        self._step = tf.function(model.step, reduce_retracing=True)

    def initial_states(self, batch_size):
        return self.model.initial_state(batch_size)

    def step(self, tokens, states):
        logits, states = self._step(tf.constant(tokens, tf.int32), list(states))
        return logits, list(states)


class KerasTranslator:
    """``Translator.encode`` and ``decode_step`` for ``zoo.decoding.SentenceTranslator``."""

    preferred_batch = 256

    def __init__(self, model):
        self.model = model
        self._encode = tf.function(model.encode, reduce_retracing=True)
        self._decode_step = tf.function(model.decode_step, reduce_retracing=True)

    def encode(self, ids, valid_len):
        return dict(self._encode(tf.constant(ids, tf.int32), tf.constant(valid_len, tf.int32)))

    def decode_step(self, tokens, state):
        log_probs, states = self._decode_step(tf.constant(tokens, tf.int32), state)
        return log_probs, {**state, **{f"state_{i}": s for i, s in enumerate(states)}}

    def attention_weights(self, ids, valid_len, decoder_input):
        """``Translator.attention_weights`` as NumPy: [b, tgt_time, src_time]."""
        weights = self.model.attention_weights(
            tf.constant(ids, tf.int32),
            tf.constant(valid_len, tf.int32),
            tf.constant(decoder_input, tf.int32),
        )
        return weights.numpy()
