"""The chapter's text cleaning and tokenization.

>>> clean_time_machine("The Time Machine, by H. G. Wells [1898]")
'the time machine by h g wells '
>>> clean_translation("Va\\u00a0! J'ai faim.")
"va ! j'ai faim ."
>>> tokenize("go .", level="word")
['go', '.']
"""

from __future__ import annotations

import re

from zoo.errors import DataError

# A run of anything that is not a letter: \W is "not a word character", and digits and
# the underscore are word characters that are not letters.
_NON_LETTERS = re.compile(r"[\W\d_]+")
_SPACES = re.compile(" +")
# A punctuation mark that follows something other than a space.
_PUNCTUATION_AFTER_NON_SPACE = re.compile(r"(?<=[^ ])([,.!?])")

TOKEN_LEVELS = ("char", "word")
TOKENIZERS = (None, "nltk")


def clean_time_machine(text: str) -> str:
    """The language-model cleaning of the chapter, applied to the whole text at once:
    every run of non-letters (newlines included) becomes one space, then lower case.
    Letters of any script are kept; on The Time Machine (pure ASCII) this is the
    chapter's ``re.sub("[^A-Za-z]+", " ", text).lower()``."""
    cleaned = _NON_LETTERS.sub(" ", text)
    if not cleaned.replace(" ", "").isalpha() and cleaned.strip():
        # \w also matches numerals that are not decimal digits (² ₂ Ⅻ): rare, so a
        # second, slower pass by character
        cleaned = _SPACES.sub(" ", "".join(c if c.isalpha() else " " for c in cleaned))
    return cleaned.lower()


def clean_translation(text: str) -> str:
    """The translation cleaning of the chapter: non-breaking spaces (U+00A0, U+202F)
    become spaces, lower case, and a space goes before ``, . ! ?`` that follow a
    non-space."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ").lower()
    return _PUNCTUATION_AFTER_NON_SPACE.sub(r" \1", text)


def tokenize(text: str, level: str = "char", tokenizer: str | None = None) -> list[str]:
    """Splits cleaned text into tokens.

    Args:
        text: cleaned text.
        level: ``"char"`` (every character, spaces included, is a token) or ``"word"``.
        tokenizer: for words, ``None`` splits on whitespace (the chapter's way) and
            ``"nltk"`` uses ``nltk.tokenize.WordPunctTokenizer``, which also splits
            punctuation from words and needs no downloaded nltk data.

    Returns:
        The tokens in order.
    """
    if level not in TOKEN_LEVELS:
        raise DataError(f"token level must be one of {TOKEN_LEVELS}, got {level!r}")
    if tokenizer not in TOKENIZERS:
        raise DataError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if level == "char":
        if tokenizer is not None:
            raise DataError(f"tokenizer {tokenizer!r} applies to word-level tokens only")
        return list(text)
    if tokenizer == "nltk":
        from nltk.tokenize import WordPunctTokenizer

        return WordPunctTokenizer().tokenize(text)
    return text.split()
