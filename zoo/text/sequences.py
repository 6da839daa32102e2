"""Token lists → the fixed-width id rows a translator reads."""

from __future__ import annotations

import numpy as np

from zoo.text.vocab import EOS, PAD, Vocab


def truncate_pad(ids: list[int], num_steps: int, pad_id: int) -> list[int]:
    """``ids`` cut to ``num_steps`` or padded with ``pad_id`` up to it.

    >>> truncate_pad([5, 6], num_steps=4, pad_id=0), truncate_pad([5, 6, 7], 2, 0)
    ([5, 6, 0, 0], [5, 6])
    """
    return ids[:num_steps] + [pad_id] * (num_steps - len(ids))


def encode_words(sentences: list[list[str]], vocab: Vocab, num_steps: int):
    """Each sentence's words cut to ``num_steps - 1``, then ``<eos>``, padded with
    ``<pad>``: ids [n, num_steps] int32 and valid lengths [n] int32. The same rows for
    training data and for sentences given to a trained translator."""
    eos, pad = vocab[EOS], vocab[PAD]
    rows = [
        truncate_pad(vocab[words[: num_steps - 1]] + [eos], num_steps, pad) for words in sentences
    ]
    ids = np.asarray(rows, dtype=np.int32).reshape(len(rows), num_steps)
    valid_len = np.asarray([min(len(words) + 1, num_steps) for words in sentences], dtype=np.int32)
    return ids, valid_len
