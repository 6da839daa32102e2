"""Using a trained language identifier: sentences in, a label and its probabilities out.

``LanguageIdentifier`` runs any backend that maps char ids to probabilities: the Keras
model (``SentenceLanguageClassifier.classify``) or, from an export folder
(``zoo.load(EXPORT_DIR)``), the TFLite ``classify`` signature on LiteRT and NumPy::

    >>> identifier = zoo.load("runs/langid-bigru/<time>/export")  # doctest: +SKIP
    >>> identifier.classify("Je suis chez moi.")                   # doctest: +SKIP
    {'label': 'fr', 'probabilities': {'en': 0.0012, 'fr': 0.9988}}
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo.export.manifest import ExportError
from zoo_langid.text import char_ids

SIGNATURE = "classify"
INPUT, OUTPUT = "char_ids", "probabilities"


class LanguageIdentifier:
    """Sentences → labels, over ``probabilities`` (char ids [sentences, max_chars] int32
    → [sentences, labels] float32)."""

    def __init__(self, probabilities: Callable, vocab, max_chars: int, labels):
        self.probabilities, self.vocab = probabilities, vocab
        self.max_chars, self.labels = max_chars, tuple(labels)

    @classmethod
    def from_export(cls, litert_model, manifest: dict, folder) -> LanguageIdentifier:
        """The ``classify`` signature of a checked export (``zoo.export.litert``), after
        checking that its vocabulary, width and labels are the file's."""
        from zoo.export.litert import checked_vocab

        vocab = checked_vocab(folder, manifest, "char_vocab", litert_model)
        max_chars, labels = manifest["text"]["max_chars"], manifest["labels"]
        details = litert_model.tensor_details(SIGNATURE)
        expected = {INPUT: ([1, max_chars], "int32"), OUTPUT: ([1, len(labels)], "float32")}
        found = {**details["inputs"], **details["outputs"]}
        for name, (shape, dtype) in expected.items():
            if found.get(name) != (shape, dtype):
                raise ExportError(
                    f"{folder}: export.json says {name} is {dtype} {shape} (text.max_chars "
                    f"{max_chars}, {len(labels)} labels), but {litert_model.path.name} has "
                    f"{found.get(name)}: they are not from the same export"
                )

        def probabilities(ids: np.ndarray) -> np.ndarray:
            rows = [litert_model.run(SIGNATURE, {INPUT: row[None]})[OUTPUT] for row in ids]
            return np.concatenate(rows) if rows else np.zeros((0, len(labels)), np.float32)

        return cls(probabilities, vocab, max_chars, labels)

    def classify(self, sentences):
        """``{"label": ..., "probabilities": {label: p, ...}}`` of one sentence (a
        string), or the list of them of a list of sentences."""
        one = isinstance(sentences, str)
        batch = [sentences] if one else list(sentences)
        probabilities = np.asarray(self.probabilities(char_ids(batch, self.vocab, self.max_chars)))
        results = [
            {
                "label": self.labels[int(row.argmax())],
                "probabilities": {
                    label: round(float(p), 4) for label, p in zip(self.labels, row, strict=True)
                },
            }
            for row in probabilities
        ]
        return results[0] if one else results
