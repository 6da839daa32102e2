"""Sentences as the model reads them: characters, cut and padded to a fixed width.

NumPy only: the TFLite runtime (``zoo_langid.runtime``) encodes its input with the same
function as training, so an app's ids are the training ids.
"""

from __future__ import annotations

import numpy as np

# The classes, in the order of the model's outputs.
LABELS = ("en", "fr")
PAD_ID = 0  # <pad>, the first reserved token of the vocabulary


def char_ids(sentences, vocab, max_chars: int) -> np.ndarray:
    """Each sentence's first ``max_chars`` characters as vocabulary ids (unknown ones:
    ``<unk>``), padded with ``<pad>`` (id 0) after the sentence.

    Shapes: ``len(sentences)`` strings → [sentences, max_chars] int32.

    Example:
        >>> from zoo.text.vocab import Vocab
        >>> char_ids(["abc", "z"], Vocab("aabc", reserved_tokens=("<pad>", "<unk>")), 4)
        array([[2, 3, 4, 0],
               [1, 0, 0, 0]], dtype=int32)
    """
    ids = np.full((len(sentences), max_chars), PAD_ID, np.int32)
    for row, sentence in enumerate(sentences):
        characters = list(sentence[:max_chars])
        ids[row, : len(characters)] = vocab[characters]
    return ids
