"""The encoder of the encoder–decoder architecture."""

import keras

from zoo import registry


@keras.saving.register_keras_serializable(package="zoo")
class Seq2SeqEncoder(keras.layers.Layer):
    """Maps a variable-length token sequence to per-step outputs and a final state.

    Embedding, then any registered sequence layer (``deep_rnn`` of GRUs as in the
    chapter, ``bidirectional``, ``lstm``, ...). Padding is masked, so the final state
    is the state at each sentence's last real token.

    Args:
        vocab_size: source vocabulary size.
        embedding_dim: embedding size.
        layer: recipe entry of the sequence layer, ``{"name": "deep_rnn", ...}``.
        embedding_dropout: dropout on the embedded tokens while training. Defaults to 0.

    Shapes: tokens [batch, time], padding_mask [batch, time] (True at real tokens) →
    (outputs [batch, time, units], states: the layer's flat state list).
    """

    def __init__(self, vocab_size, embedding_dim, layer, embedding_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dropout = float(embedding_dropout)
        self.embedding_dropout_layer = (
            keras.layers.Dropout(self.embedding_dropout) if self.embedding_dropout else None
        )
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.layer = dict(layer)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnn = registry.build_layer(self.layer, return_sequences=True, return_state=True)
        if not hasattr(self.rnn, "state_size"):
            raise ValueError(f"encoder layer '{self.layer['name']}' is not a sequence layer")

    @property
    def state_size(self):
        return list(self.rnn.state_size)

    def build(self, tokens_shape):
        self.embedding.build(tokens_shape)
        self.rnn.build((*tokens_shape, self.embedding_dim))

    def call(self, tokens, padding_mask=None, training=None):
        embedded = self.embedding(tokens)
        if self.embedding_dropout_layer is not None:
            embedded = self.embedding_dropout_layer(embedded, training=training)
        outputs, *states = self.rnn(embedded, mask=padding_mask, training=training)
        return outputs, states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "layer": self.layer,
                "embedding_dropout": self.embedding_dropout,
            }
        )
        return config
