"""The sentence classifier: characters → embedding → a registered sequence layer →
mean over the sentence's characters → one score per label."""

import keras
import numpy as np
from keras import ops

from zoo import registry
from zoo.models.presets import PresetModel
from zoo_langid.text import LABELS, PAD_ID

# Sentences classified at once by ``probabilities``.
BATCH_SIZE = 512


# Registered under this plugin's own package, so that zoo's safe loading (which refuses
# unregistered classes) reads a run's model.keras once the plugin is loaded.
@keras.saving.register_keras_serializable(package="zoo_langid")
class SentenceLanguageClassifier(PresetModel, keras.Model):
    """p(label | sentence) from a sequence encoder's outputs averaged over the valid steps:
    h_1..h_T = encoder(E[x_1]..E[x_T]), s = (1/T) Σ_t h_t, logits = W s + b, where T is
    the sentence's length before padding (``<pad>``, id 0, is masked).

    Args:
        vocab_size: characters in the vocabulary (``<pad>`` and ``<unk>`` included).
        num_labels: classes.
        embedding_dim: size of a character's embedding.
        encoder: recipe entry of a registered sequence layer, e.g. ``{"name":
            "bidirectional", "layer": "gru", "units": 64}``; it returns every step.
        dropout: dropout of the averaged outputs while training. Defaults to 0.

    Shapes: char_ids [batch, max_chars] int32 → logits [batch, num_labels].

    A trained one loads by name (``zoo.load(NAME)`` or ``from_preset(NAME)``) and
    ``classify``-es sentences with the vocabulary it was trained with.

    Example:
        >>> model = SentenceLanguageClassifier(20, 2, 8, {"name": "gru", "units": 4})
        >>> tuple(model(ops.ones((3, 5), "int32")).shape)
        (3, 2)
    """

    def __init__(self, vocab_size, num_labels, embedding_dim, encoder, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.num_labels = num_labels
        self.embedding_dim = embedding_dim
        self.encoder_spec = dict(encoder)
        self.dropout = float(dropout)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.encoder = registry.build_layer(self.encoder_spec, return_sequences=True)
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        self.head = keras.layers.Dense(num_labels, name="head")

    def call(self, char_ids, training=None):
        mask = ops.not_equal(char_ids, PAD_ID)  # (batch, time)
        outputs = self.encoder(self.embedding(char_ids), mask=mask, training=training)
        weights = ops.cast(mask, outputs.dtype)[:, :, None]  # (batch, time, 1)
        # an empty sentence (all padding) averages nothing: zeros, not a division by 0
        pooled = ops.sum(outputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        return self.head(self.dropout_layer(pooled, training=training))

    def probabilities(self, char_ids: np.ndarray) -> np.ndarray:
        """p(label | sentence), in batches: char_ids [sentences, max_chars] → [sentences,
        num_labels] (NumPy)."""
        rows = [
            np.asarray(ops.softmax(self(char_ids[start : start + BATCH_SIZE], training=False)))
            for start in range(0, len(char_ids), BATCH_SIZE)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, self.num_labels), np.float32)

    def classify(self, sentences):
        """``{"label": ..., "probabilities": {label: p, ...}}`` of one sentence (a
        string), or the list of them of a list of sentences; needs the model's ``preset``
        (``zoo.load`` or ``from_preset``) for its vocabulary and width."""
        from zoo_langid.runtime import LanguageIdentifier

        identifier = self.session(
            "classify",
            lambda preset: LanguageIdentifier(
                self.probabilities,
                preset.vocabularies["vocab.txt"],
                preset.recipe["data"]["max_chars"],
                LABELS,
            ),
        )
        return identifier.classify(sentences)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "num_labels": self.num_labels,
                "embedding_dim": self.embedding_dim,
                "encoder": self.encoder_spec,
                "dropout": self.dropout,
            }
        )
        return config
