"""Perplexity: exp(mean negative log-likelihood per token)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class Perplexity(keras.metrics.Metric):
    """exp((1/n) Σ_t −log P(x_t | x_{t-1}, ..., x_1)) over every token seen.

    Sums the negative log-likelihood and counts tokens across batches, so a short
    last batch weighs by its tokens, not as a whole batch: the value is the exact
    per-token perplexity of everything passed to ``update_state``.

    Shapes: y_true [batch, time] int, y_pred [batch, time, vocab] logits.
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total_nll = self.add_variable(
            shape=(), initializer="zeros", name="total_nll", dtype="float64"
        )
        self.num_tokens = self.add_variable(
            shape=(), initializer="zeros", name="num_tokens", dtype="float64"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        self.total_nll.assign_add(ops.cast(ops.sum(nll), "float64"))
        self.num_tokens.assign_add(ops.cast(ops.size(nll), "float64"))

    def result(self):
        return ops.exp(self.total_nll / ops.maximum(self.num_tokens, 1.0))
