"""How a recipe's text becomes tokens and tokens become text again, one object per task.

A recipe chooses (``data.preprocess``):

- ``chapter``: the chapter's cleaning. Language models keep lower-case letters only,
  every other run of characters one space (The Time Machine); translators lower-case and
  put a space before ``, . ! ?`` (fra-eng). The default for the chapter's corpora, and
  what the shipped models were trained with.
- ``lower``: the text as written, in lower case.
- ``none``: the text as written.

With ``lower`` and ``none`` a language model keeps every character, and its line ends
(``data.line_ends``) are either one space or the token ``<eos>`` (as word-level
benchmarks such as Penn Treebank and WikiText count them: every line ends with one). A
translator splits every punctuation mark in ``PUNCTUATION`` off the words around it
(``¿Dónde?`` → ``¿ dónde ?``) and joins them back when it writes a translation.

A translator's words may be cut into subwords (``data.tokenizer: subword``); see
``zoo.text.subword``. What is written here is also written into an export's
``export.json`` (``manifest``) as steps an app repeats, and read back from it
(``from_manifest``). Nothing here imports TensorFlow.

>>> text = LanguageModelText(preprocess="none", token_level="word", line_ends="eos")
>>> text.tokens("The cat sat.\\nIt <unk> N")
['The', 'cat', 'sat.', '<eos>', 'It', '<unk>', 'N', '<eos>']
>>> text.join(['on', 'the', 'mat', '<eos>', 'It'])
'on the mat\\nIt'
>>> words = TranslationText(preprocess="lower").words("¿Dónde está «el» gato?")
>>> words
['¿', 'dónde', 'está', '«', 'el', '»', 'gato', '?']
>>> TranslationText(preprocess="lower").join(words)
'¿dónde está «el» gato?'
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass

from zoo.errors import DataError
from zoo.text.cleaning import clean_time_machine, clean_translation, tokenize
from zoo.text.vocab import EOS, LANGUAGE_MODEL_RESERVED_TOKENS, TRANSLATION_RESERVED_TOKENS

PREPROCESS = ("chapter", "lower", "none")
LINE_ENDS = ("space", "eos")

# Split off words by translators that do not use the chapter's cleaning. Apostrophes
# (straight or curly) and hyphens stay inside words (j'ai, j’ai, peut-être); the marks
# that open a phrase attach to the next word when a translation is written, all others
# to the word before.
OPENING = "¿¡«“„([{"
CLOSING = ",.!?;:…»”)]}"
# Straight double quotes open and close alike: split off, joined to neither side.
PUNCTUATION = OPENING + CLOSING + '"'
_CLASS = "[" + re.escape(PUNCTUATION) + "]"
# The same expressions serve Python's re and TensorFlow's RE2 (replaced with r" \1 " and
# r"\1"); export.json gives apps lookaround forms (cleaning_steps, JOIN_STEPS), which
# JavaScript reads alike and whose replacements are plain text.
SPLIT_PATTERN = f"({_CLASS})"
OPENING_JOIN = "([" + re.escape(OPENING) + "]) "
CLOSING_JOIN = " ([" + re.escape(CLOSING) + "])"
_SPLIT = re.compile(SPLIT_PATTERN)
_OPENING_JOIN = re.compile(OPENING_JOIN)
_CLOSING_JOIN = re.compile(CLOSING_JOIN)
_NO_BREAK_SPACES = re.compile("[\u00a0\u202f]")
_SPACES = re.compile(r"\s+")


def _check(name: str, value, choices) -> None:
    if value not in choices:
        raise DataError(f"data.{name} must be one of {', '.join(choices)}, got {value!r}")


def _case(text: str, preprocess: str) -> str:
    return text.lower() if preprocess == "lower" else text


@dataclass(frozen=True)
class LanguageModelText:
    """A language model's text: cleaning, tokens (characters or words) and line ends."""

    preprocess: str = "chapter"
    token_level: str = "char"
    tokenizer: str | None = None
    line_ends: str = "space"

    def __post_init__(self):
        _check("preprocess", self.preprocess, PREPROCESS)
        _check("line_ends", self.line_ends, LINE_ENDS)
        if self.preprocess == "chapter" and self.line_ends == "eos":
            raise DataError(
                "data.line_ends: eos keeps line ends, and data.preprocess: chapter turns "
                "them into spaces; choose data.preprocess: lower or none"
            )
        tokenize("", level=self.token_level, tokenizer=self.tokenizer)  # checks both

    @classmethod
    def from_spec(cls, spec: dict) -> LanguageModelText:
        """From a recipe's ``data`` section (or an export's ``text``)."""
        return cls(
            preprocess=spec.get("preprocess", "chapter"),
            token_level=spec.get("token_level", "char"),
            tokenizer=spec.get("tokenizer"),
            line_ends=spec.get("line_ends", "space"),
        )

    @property
    def reserved_tokens(self) -> tuple[str, ...]:
        return (
            (*LANGUAGE_MODEL_RESERVED_TOKENS, EOS)
            if self.line_ends == "eos"
            else (LANGUAGE_MODEL_RESERVED_TOKENS)
        )

    @property
    def keeps_lines(self) -> bool:
        """Whether the text keeps its lines, so that splits are cut at line ends."""
        return self.preprocess != "chapter"

    def clean(self, text: str) -> str:
        """The text as the model reads it: line ends are ``\\n``, or spaces where a
        character model reads them as spaces (and, in the chapter's cleaning, always)."""
        if self.preprocess == "chapter":
            return clean_time_machine(text)
        text = _case(text.replace("\r\n", "\n").replace("\r", "\n"), self.preprocess)
        if self.token_level == "char" and self.line_ends == "space":
            return text.replace("\n", " ")  # a line end is a space character
        return text

    def tokens(self, text: str, end_last_line: bool = True) -> list[str]:
        """The tokens of ``text``: ``split`` of ``clean``."""
        return self.split(self.clean(text), end_last_line)

    def split(self, cleaned: str, end_last_line: bool = True) -> list[str]:
        """The tokens of cleaned text. With ``line_ends: eos`` every line ends with
        ``<eos>`` (the last one too unless ``end_last_line`` is False: a prefix to
        continue); with ``space`` lines are joined by one space (characters) or simply
        follow each other (words)."""
        if self.preprocess == "chapter":
            return tokenize(cleaned, level=self.token_level, tokenizer=self.tokenizer)
        lines = cleaned.split("\n")
        if lines[-1] == "" and len(lines) > 1:  # the text ends with a line end
            lines.pop()
            end_last_line = True
        found: list[str] = []
        for number, line in enumerate(lines):
            last = number == len(lines) - 1
            found += tokenize(line, level=self.token_level, tokenizer=self.tokenizer)
            if last and not end_last_line:
                break
            if self.line_ends == "eos":
                found.append(EOS)
            elif self.token_level == "char" and not last:
                found.append(" ")
        return found

    def join(self, tokens: list[str]) -> str:
        """Tokens as text: characters follow each other, words are separated by one
        space, ``<eos>`` is a line end."""
        if self.token_level == "char":
            return "".join("\n" if token == EOS else token for token in tokens)
        text = " ".join("\n" if token == EOS else token for token in tokens)
        return text.replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")

    def manifest(self) -> dict:
        """What an app needs to repeat ``tokens`` and ``join``."""
        return {
            "preprocess": self.preprocess,
            "cleaning_steps": cleaning_steps("text", self.preprocess),
            "token_level": self.token_level,
            "tokenizer": self.tokenizer,
            "line_ends": self.line_ends,
        }


@dataclass(frozen=True)
class TranslationText:
    """A translator's sentences: cleaning, words (or subwords) and the written form.

    Args:
        preprocess: see the module.
        tokenizer: ``None`` (words between spaces), ``"nltk"`` (also splits
            punctuation, needing no downloaded data) or ``"subword"`` (words cut into
            pieces of the vocabulary, ``pieces``).
        pieces: with ``"subword"``, a ``zoo.text.subword.WordPiece``; set by the data
            once the vocabulary is known (``with_vocab``).
    """

    preprocess: str = "chapter"
    tokenizer: str | None = None
    pieces: object = None

    def __post_init__(self):
        _check("preprocess", self.preprocess, PREPROCESS)
        if self.tokenizer not in (None, "nltk", "subword"):
            raise DataError(
                f"data.tokenizer must be one of nltk, subword or null, got {self.tokenizer!r}"
            )

    @classmethod
    def from_spec(cls, spec: dict, vocab=None) -> TranslationText:
        """From a recipe's ``data`` section (or an export's ``text``), with the
        vocabulary whose pieces a subword tokenizer uses."""
        text = cls(preprocess=spec.get("preprocess", "chapter"), tokenizer=spec.get("tokenizer"))
        return text.with_vocab(vocab) if vocab is not None else text

    def with_vocab(self, vocab) -> TranslationText:
        """This text format reading ``vocab``'s pieces (subword), or itself."""
        if self.tokenizer != "subword":
            return self
        from zoo.text.subword import WordPiece

        pieces = WordPiece.from_vocab(vocab, reserved_tokens=TRANSLATION_RESERVED_TOKENS)
        return TranslationText(self.preprocess, self.tokenizer, pieces)

    def clean(self, sentence: str) -> str:
        """The sentence as the model reads it: words separated by single spaces."""
        if self.preprocess == "chapter":
            return clean_translation(sentence)
        text = _case(_NO_BREAK_SPACES.sub(" ", sentence), self.preprocess)
        return _SPACES.sub(" ", _SPLIT.sub(r" \1 ", text)).strip()

    def words(self, sentence: str) -> list[str]:
        """The cleaned sentence's words (subwords are ``tokens``)."""
        tokenizer = None if self.tokenizer == "subword" else self.tokenizer
        return tokenize(self.clean(sentence), level="word", tokenizer=tokenizer)

    def tokens(self, sentence: str) -> list[str]:
        """What the model reads: the words, or their pieces with ``subword``."""
        words = self.words(sentence)
        if self.tokenizer != "subword":
            return words
        if self.pieces is None:
            raise DataError("a subword tokenizer needs its vocabulary (with_vocab)")
        return self.pieces.tokenize(words)

    def join(self, tokens: list[str]) -> str:
        """A translation as written: subwords joined into words, words separated by
        spaces, and (unless chapter) punctuation attached to its word."""
        if self.tokenizer == "subword":
            from zoo.text.subword import WordPiece

            tokens = WordPiece((), reserved_tokens=TRANSLATION_RESERVED_TOKENS).detokenize(tokens)
        text = " ".join(tokens)
        if self.preprocess == "chapter":
            return text
        return _CLOSING_JOIN.sub(r"\1", _OPENING_JOIN.sub(r"\1", text))

    def manifest(self) -> dict:
        """What an app needs to repeat ``tokens`` and ``join``."""
        found = {
            "preprocess": self.preprocess,
            "cleaning_steps": cleaning_steps("sentences", self.preprocess),
            "tokenizer": self.tokenizer,
        }
        if self.tokenizer == "subword":
            found["subword"] = (
                self.pieces.manifest() if self.pieces is not None else {"kind": "wordpiece"}
            )
        if self.preprocess != "chapter":
            found["join_steps"] = JOIN_STEPS
        return found


# Python's \s (what str.split and str.strip take for whitespace), spelled out: JavaScript's
# \s is another set (with U+FEFF, without U+001C..U+001F and U+0085).
WHITESPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NO_BREAK_SPACES = r"[\u00a0\u202f]"
# What a translation written by a translator that splits punctuation (not the chapter's)
# goes through, as export.json's text.join_steps: the lookaround forms of OPENING_JOIN and
# CLOSING_JOIN.
JOIN_STEPS = [
    {"replace": "(?<=[" + re.escape(OPENING) + "]) ", "with": "", "why": "opening marks"},
    {"replace": " (?=[" + re.escape(CLOSING) + "])", "with": "", "why": "closing marks"},
]


@functools.cache
def python_non_letter() -> str:
    """JavaScript's ``[^\\p{L}]`` (not a letter: Unicode category L) as a class Python's
    ``re`` reads, which has no ``\\p``: ``\\W``, ``\\d``, ``_`` and the other characters
    ``\\w`` takes that are not letters, numerals such as ² ½ Ⅻ (80 ranges, found once in
    Python's Unicode database in 0.3 s)."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if character.isalnum() and not character.isalpha() and not character.isdecimal():
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])

    def escaped(code):
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

    return (
        r"[\W\d_"
        + "".join(
            escaped(first) if first == last else f"{escaped(first)}-{escaped(last)}"
            for first, last in ranges
        )
        + "]"
    )


def cleaning_steps(kind: str, preprocess: str) -> list[dict]:
    """The cleaning as steps an app applies in order, of running ``"text"``
    (``LanguageModelText``) or of ``"sentences"`` (``TranslationText``):

    - ``{"replace": PATTERN, "with": TEXT}``: every match of PATTERN becomes TEXT, as
      written (no group references). PATTERN is read alike by Python's ``re`` (no flags)
      and JavaScript (flags ``gu``), or, where the two need different forms, is
      ``{"javascript": ..., "python": ...}``.
    - ``{"lowercase": true}``: Unicode's full lower-case mapping (``str.lower``,
      ``toLowerCase``).
    - ``{"trim": true}``: spaces (U+0020) removed at both ends.
    """
    if preprocess == "chapter":
        if kind == "text":
            non_letters = {"javascript": r"[^\p{L}]+", "python": python_non_letter() + "+"}
            return [
                {"replace": non_letters, "with": " ", "why": "every run of non-letters"},
                {"lowercase": True},
            ]
        return [
            {"replace": NO_BREAK_SPACES, "with": " ", "why": "no-break spaces"},
            {"lowercase": True},
            {
                "replace": r"(?<=[^ ])(?=[,.!?])",
                "with": " ",
                "why": "a space before , . ! ? that follow a non-space",
            },
        ]
    case = [{"lowercase": True}] if preprocess == "lower" else []
    if kind == "text":
        return [{"replace": r"\r\n?", "with": "\n", "why": "line ends"}, *case]
    return [
        {"replace": NO_BREAK_SPACES, "with": " ", "why": "no-break spaces"},
        *case,
        {"replace": f"(?<={_CLASS})|(?={_CLASS})", "with": " ", "why": "spaces around punctuation"},
        {"replace": WHITESPACE + "+", "with": " ", "why": "single spaces"},
        {"trim": True},
    ]
