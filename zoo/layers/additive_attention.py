"""Bahdanau's additive attention, the attention of the chapter's seq2seq decoder."""

import keras
from keras import ops

from zoo.registry import register_layer

# The score of a masked key before the softmax, as in d2l's masked_softmax: exp(-1e6)
# underflows to 0, so a masked key gets no weight.
MASKED_SCORE = -1e6


@register_layer("additive_attention")
class AdditiveAttention(keras.layers.Layer):
    """Additive attention pooling of values by how well each key matches each query:

        a(q, k) = w_v^T tanh(W_q q + W_k k)
        α(q, k_i) = softmax_i a(q, k_i)      (over the keys)
        attention(q) = Σ_i α(q, k_i) v_i

    Queries and keys may have different sizes: W_q and W_k map both to ``units``.

    Args:
        units: the hidden size of W_q and W_k.
        dropout: dropout rate on the attention weights while training. Defaults to 0.

    Call arguments:
        query: [batch, num_queries, query_dim].
        keys: [batch, num_keys, key_dim].
        values: [batch, num_keys, value_dim].
        key_mask: [batch, num_keys] bool, False at padded keys, or None. A masked key
            scores ``MASKED_SCORE`` before the softmax, so it gets (nearly) zero weight
            and its key and value do not change the output.
        return_attention_scores: also return the weights α. Defaults to False.

    Returns:
        context [batch, num_queries, value_dim]; with ``return_attention_scores`` the
        pair (context, weights [batch, num_queries, num_keys]), the weights before dropout.

    Example:
        >>> attention = AdditiveAttention(units=8)
        >>> memory = ops.ones((2, 5, 16))
        >>> context = attention(ops.ones((2, 1, 16)), memory, memory)  # (2, 1, 16)
    """

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.dropout = float(dropout)
        self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="query_dense")
        self.key_dense = keras.layers.Dense(self.units, use_bias=False, name="key_dense")
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="score_dense")
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")

    def build(self, query_shape, keys_shape, values_shape=None):
        """The values carry no weights; their shape is accepted so callers can pass all three."""
        self.query_dense.build(query_shape)
        self.key_dense.build(keys_shape)
        self.score_dense.build((None, None, None, self.units))

    def call(
        self, query, keys, values, key_mask=None, training=None, return_attention_scores=False
    ):
        return self.attend(
            query,
            self.project_keys(keys),
            values,
            key_mask=key_mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )

    def project_keys(self, keys):
        """W_k k for every key: [batch, num_keys, key_dim] → [batch, num_keys, units].

        The keys of a decoder's attention are the encoder's outputs, the same at every
        decoding step: project them once with this and call ``attend`` at each step.
        """
        return self.key_dense(keys)

    def attend(
        self,
        query,
        projected_keys,
        values,
        key_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        """``call`` with keys already projected by ``project_keys``."""
        projected_queries = self.query_dense(query)  # (batch, num_queries, units)
        # (batch, num_queries, num_keys, units): every query against every key.
        features = ops.tanh(
            ops.expand_dims(projected_queries, axis=2) + ops.expand_dims(projected_keys, axis=1)
        )
        scores = ops.squeeze(self.score_dense(features), axis=-1)  # (batch, queries, keys)
        if key_mask is not None:
            key_mask = ops.expand_dims(ops.cast(key_mask, "bool"), axis=1)  # (batch, 1, keys)
            scores = ops.where(key_mask, scores, ops.cast(MASKED_SCORE, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(self.attention_dropout(weights, training=training), values)
        if return_attention_scores:
            return context, weights
        return context

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "dropout": self.dropout})
        return config
