"""A token ↔ id table, saved as a plain text file that travels with models and exports."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from zoo.errors import DataError

UNK = "<unk>"
PAD = "<pad>"
BOS = "<bos>"
EOS = "<eos>"
LANGUAGE_MODEL_RESERVED_TOKENS = (UNK,)
TRANSLATION_RESERVED_TOKENS = (PAD, BOS, EOS, UNK)


class Vocab:
    """The vocabulary of a corpus: reserved tokens first, then the tokens seen at least
    ``min_freq`` times by frequency, most frequent first, ties in alphabetical order.
    Unknown tokens map to the id of ``<unk>``, which is added after the reserved tokens
    if they lack it.

    Args:
        tokens: the corpus tokens, flat (``["a", "b"]``) or as lists of lists
            (``[["a"], ["b", "a"]]``).
        min_freq: tokens seen fewer times than this map to ``<unk>``. Defaults to 0.
        reserved_tokens: tokens that get the first ids in this order. Defaults to
            ``("<unk>",)``; translation uses ``("<pad>", "<bos>", "<eos>", "<unk>")``.

    Saved with ``save`` as UTF-8 text, one token per line in id order, and read back by
    ``Vocab.load`` with identical ids. Two vocabularies are equal when their token lists
    are.

    Example:
        >>> vocab = Vocab("abracadabra")
        >>> vocab.idx_to_token
        ['<unk>', 'a', 'b', 'r', 'c', 'd']
        >>> vocab[["a", "z"]]
        [1, 0]
        >>> vocab.to_tokens([2, 3])
        ['b', 'r']
    """

    def __init__(
        self,
        tokens: Iterable = (),
        min_freq: int = 0,
        reserved_tokens: Iterable[str] = LANGUAGE_MODEL_RESERVED_TOKENS,
    ):
        reserved_tokens = list(reserved_tokens)
        if UNK not in reserved_tokens:
            reserved_tokens.append(UNK)
        counts = collections.Counter(_flatten(tokens))
        by_frequency = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        reserved = set(reserved_tokens)
        self._set_tokens(
            reserved_tokens
            + [
                token
                for token, count in by_frequency
                if count >= min_freq and token not in reserved
            ]
        )

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        """The id of one token, or the list of ids of a list or tuple of tokens."""
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(token, self.unk) for token in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    def to_tokens(self, ids):
        """The token of one id, or the list of tokens of a sequence of ids."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if isinstance(ids, (list, tuple)):
            return [self.idx_to_token[int(index)] for index in ids]
        return self.idx_to_token[int(ids)]

    @property
    def unk(self) -> int:
        """The id of ``<unk>``."""
        return self.token_to_idx[UNK]

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token

    __hash__ = None

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.idx_to_token[:8]!r})"

    def save(self, path) -> None:
        """Writes the tokens, one per line in id order, as UTF-8 text."""
        for token in self.idx_to_token:
            if "\n" in token or "\r" in token or token == "":
                raise DataError(f"token {token!r} cannot be saved one per line")
        # through a temporary file and a rename: a kill never leaves a shorter vocabulary
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(
            "".join(f"{token}\n" for token in self.idx_to_token), encoding="utf-8", newline="\n"
        )
        os.replace(temporary, path)

    @classmethod
    def from_tokens(cls, idx_to_token: list[str]) -> Vocab:
        """A vocabulary whose ids are the positions of ``idx_to_token`` (which holds
        ``<unk>`` and no token twice), e.g. a learned subword vocabulary."""
        vocab = cls.__new__(cls)
        vocab._set_tokens(list(idx_to_token))
        return vocab

    @classmethod
    def load(cls, path) -> Vocab:
        """Reads a vocabulary written by ``save``; the ids are the line numbers from 0."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: vocabulary file not found")
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
        if not text.endswith("\n"):
            raise DataError(f"{path}: not a vocabulary file (it must end with a newline)")
        vocab = cls.__new__(cls)
        vocab._set_tokens(text[:-1].split("\n"), source=f"{path}: ")
        return vocab

    def _set_tokens(self, idx_to_token: list[str], source: str = "") -> None:
        counts = collections.Counter(idx_to_token)
        duplicates = [token for token, count in counts.items() if count > 1]
        if duplicates:
            raise DataError(f"{source}vocabulary has duplicate tokens {duplicates[:5]!r}")
        if UNK not in counts:
            raise DataError(f"{source}vocabulary has no {UNK} token")
        self.idx_to_token = idx_to_token
        self.token_to_idx = {token: index for index, token in enumerate(idx_to_token)}


def _flatten(tokens: Iterable):
    for item in tokens:
        if isinstance(item, (list, tuple)):
            yield from item
        else:
            yield item
