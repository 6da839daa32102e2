"""Embedding dropout: whole words dropped, every place they occur in a batch."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class EmbeddingDropout(keras.layers.Layer):
    """Dropout of word types: each call draws one keep-or-drop per row of the embedding
    matrix, and every occurrence of a dropped word in the batch embeds as zeros (Gal &
    Ghahramani 2016; the embedding dropout of Merity et al. 2017):

        y_{b,t} = e(x_{b,t}) · m_{x_{b,t}} / (1 − p),   m_v ~ Bernoulli(1 − p) per word v

    so the model cannot lean on one word's vector, where element-wise dropout would only
    thin each vector. At inference it passes the embeddings through.

    Args:
        vocab_size: rows of the embedding matrix.
        rate: p, the share of words dropped. Defaults to 0.
        seed: seed of the masks. Defaults to None.

    Shapes: embedded [batch, time, features], tokens [batch, time] int →
    [batch, time, features].

    Example:
        >>> tokens = ops.convert_to_tensor([[1, 2, 1]])
        >>> outputs = EmbeddingDropout(5, 0.5)(ops.ones((1, 3, 4)), tokens, training=True)
    """

    def __init__(self, vocab_size, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.vocab_size = vocab_size
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, embedded, tokens, training=None):
        if not training or not self.rate:
            return embedded
        ones = ops.ones((self.vocab_size,), dtype=embedded.dtype)
        kept = keras.random.dropout(ones, self.rate, seed=self.seed_generator)  # (vocab,)
        return embedded * ops.take(kept, tokens)[..., None]

    def compute_output_shape(self, embedded_shape, tokens_shape=None):
        return embedded_shape

    def get_config(self):
        config = super().get_config()
        config.update({"vocab_size": self.vocab_size, "rate": self.rate, "seed": self.seed})
        return config
