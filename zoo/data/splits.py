"""The deterministic train / validation / test splits shared by the shipped datasets and
users' files: contiguous cuts for a language-model corpus, a seeded hash of the source
sentence for translation pairs."""

from __future__ import annotations

import hashlib

from zoo.errors import DataError

SPLITS = ("train", "validation", "test")
# The fractions of validation and test; train gets the rest.
VALIDATION_FRACTION = 0.05
TEST_FRACTION = 0.05


def contiguous_split(text: str, at_lines: bool = False) -> dict[str, str]:
    """Cuts a cleaned corpus at character positions into its first 90 % (train), the next
    5 % (validation) and the last 5 % (test), keeping the text's order. With
    ``at_lines``, each cut moves to just after the next line end (when there is one), so
    that no line is split between two parts.

    Example:
        >>> {name: len(part) for name, part in contiguous_split("x" * 100).items()}
        {'train': 90, 'validation': 5, 'test': 5}
        >>> contiguous_split("a\\n" * 50, at_lines=True)["test"]
        'a\\na\\n'
    """
    num_chars = len(text)
    train_end = round(num_chars * (1 - VALIDATION_FRACTION - TEST_FRACTION))
    validation_end = round(num_chars * (1 - TEST_FRACTION))
    if at_lines:
        train_end, validation_end = (_line_end(text, cut) for cut in (train_end, validation_end))
    return {
        "train": text[:train_end],
        "validation": text[train_end:validation_end],
        "test": text[validation_end:],
    }


def _line_end(text: str, position: int) -> int:
    """Just after the first line end at or after ``position - 1``, or ``position``."""
    found = text.find("\n", max(0, position - 1))
    return found + 1 if found != -1 else position


def hash_split(key: str, seed: int) -> str:
    """The split of a translation pair whose (cleaned) source sentence is ``key``.

    The sha256 of ``seed`` and ``key`` places the pair, so every pair that shares a source
    sentence falls in the same split, and the result is the same on every machine and in
    every process (unlike Python's salted ``hash``). About 5 % of keys go to validation,
    5 % to test.
    """
    digest = hashlib.sha256(f"{seed}\t{key}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if position < VALIDATION_FRACTION:
        return "validation"
    if position < VALIDATION_FRACTION + TEST_FRACTION:
        return "test"
    return "train"


def source_names(source) -> str:
    """A corpus as messages name it: its name, its path, or its three paths."""
    if isinstance(source, dict):
        return ", ".join(f"{name} {source[name]}" for name in SPLITS)
    return str(source)


def check_source(source) -> None:
    """A mapping source names exactly the three splits."""
    if isinstance(source, dict) and sorted(source) != sorted(SPLITS):
        raise DataError(
            f"data.source: a mapping needs exactly the keys train, validation and test, "
            f"got {', '.join(map(str, source)) or 'none'}"
        )
