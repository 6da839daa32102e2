"""WordPiece subwords: a vocabulary learned by tensorflow-text's learner, and a pure-Python
tokenizer that splits words with it the way tensorflow-text's ``WordpieceTokenizer`` does,
so that training (with TensorFlow) and an app (without) cut every word the same way."""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable

from zoo.errors import DataError
from zoo.text.vocab import UNK

# Marks a piece that continues a word: "played" → ["play", "##ed"].
SUFFIX_PREFIX = "##"
# Distinct words whose pieces a tokenizer remembers; a corpus has far fewer.
CACHED_WORDS = 1 << 18
# How low the learner's frequency threshold may go: its default, 10, leaves the vocabulary
# of a small corpus far below the size asked for.
LOWEST_PIECE_COUNT = 1


def learn_wordpiece(
    words_per_sentence: Iterable[Iterable[str]], vocab_size: int, reserved_tokens: Iterable[str]
) -> list[str]:
    """Learns a WordPiece vocabulary with tensorflow-text's learner
    (``tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib.learn``).

    The words are counted as given: no lower-casing, normalization or punctuation
    splitting (``bert_vocab_from_dataset`` would apply BERT's ``BasicTokenizer`` first).
    Every character of the words is in the vocabulary both alone and as ``##c``, so
    every training word gets pieces rather than the unknown token. (The learner keeps
    the 1,000 most frequent characters and does not count words longer than 50
    characters, so only a character beyond those, or seen only in such words, is left
    out.) The same words, in any order, give the same list.

    Args:
        words_per_sentence: the training sentences, each as its list of words; empty
            words are ignored.
        vocab_size: the largest size, reserved tokens included. The learner searches
            for the frequency threshold that gives 95 % to 100 % of it, down to pieces
            seen once; when no threshold does, its vocabulary is smaller (all the
            corpus has, or thresholds one apart straddle the range), or larger and then
            cut to ``vocab_size`` by dropping its rarest pieces.
        reserved_tokens: tokens placed first, in this order (e.g. ``["<pad>", "<bos>",
            "<eos>", "<unk>"]``); the learner adds none of its own.

    Returns:
        The reserved tokens, then the single characters in code-point order, then the
        other pieces, most frequent first (ties in code-point order), no duplicates.

    Raises:
        DataError: there are no words, or ``vocab_size`` is smaller than the reserved
            tokens plus two pieces per character.
    """
    reserved_tokens = list(dict.fromkeys(reserved_tokens))
    if vocab_size < len(reserved_tokens) + 1:
        raise DataError(
            f"vocab_size {vocab_size} leaves no room for pieces after "
            f"{len(reserved_tokens)} reserved tokens"
        )
    counts = collections.Counter(word for words in words_per_sentence for word in words if word)
    for token in reserved_tokens:
        counts.pop(token, None)
    if not counts:
        raise DataError("no words to learn a WordPiece vocabulary from")
    # TensorFlow loads with tensorflow_text: only when a vocabulary is learned.
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib

    # The learner keeps its input order among equal counts: sort so that order never matters.
    word_counts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    pieces = wordpiece_tokenizer_learner_lib.learn(
        word_counts,
        vocab_size,
        reserved_tokens,
        lower_thresh=LOWEST_PIECE_COUNT,
        include_joiner_token=True,
        joiner=SUFFIX_PREFIX,
    )
    pieces = list(dict.fromkeys(pieces))
    needed = set(reserved_tokens)
    needed.update(piece for piece in pieces if len(piece.removeprefix(SUFFIX_PREFIX)) == 1)
    if len(needed) > vocab_size:
        raise DataError(
            f"vocab_size {vocab_size} is smaller than the {len(needed)} tokens that the "
            f"reserved tokens and each character of the words (alone and after "
            f"{SUFFIX_PREFIX}) need"
        )
    # The rarest pieces come last; single characters are kept so that every word is covered.
    surplus = len(pieces) - vocab_size
    kept = []
    for piece in reversed(pieces):
        if surplus > 0 and piece not in needed:
            surplus -= 1
        else:
            kept.append(piece)
    return kept[::-1]


class WordPiece:
    """Splits words into WordPiece pieces and joins pieces back into words.

    Each word is cut greedily, longest match first, as BERT does: from the start of the
    word take the longest prefix that is a piece, then repeatedly the longest piece
    ``##rest`` that continues it. A word with a part that no piece covers, or longer
    than ``max_chars_per_word``, becomes the single piece ``unknown``. Characters are
    Unicode code points (Python's ``len``); tensorflow-text counts the length limit in
    UTF-8 bytes but otherwise cuts words the same way. An empty word gives no pieces.

    ``manifest()`` holds everything besides the vocabulary file that another
    implementation needs to reproduce ``tokenize``.

    Args:
        pieces: the vocabulary, e.g. from ``learn_wordpiece``; order does not matter here.
        unknown: the piece for a word that cannot be covered. Defaults to ``"<unk>"``.
        max_chars_per_word: longer words become ``unknown``. Defaults to 100.
        reserved_tokens: tokens that ``detokenize`` keeps as words of their own, as it
            always does ``unknown``; a word that is one of them is ``unknown``. Defaults
            to none.

    A word comes back from ``detokenize(tokenize(words))`` unless it is unknown, empty,
    or begins with ``##`` (its first piece then reads as a continuation, as in BERT).

    Example:
        >>> wordpiece = WordPiece(["<unk>", "play", "##ed", "##ing", "##s", "s", "##p"])
        >>> wordpiece.tokenize(["played", "plays", "spy"])
        ['play', '##ed', 'play', '##s', '<unk>']
        >>> wordpiece.detokenize(["play", "##ing", "<unk>", "##s"])
        ['playing', '<unk>', 's']
    """

    def __init__(
        self,
        pieces: Iterable[str],
        unknown: str = "<unk>",
        max_chars_per_word: int = 100,
        reserved_tokens: Iterable[str] = (),
    ):
        self.pieces = list(pieces)
        self.unknown = unknown
        self.max_chars_per_word = max_chars_per_word
        self.reserved_tokens = list(reserved_tokens)
        self._piece_set = frozenset(self.pieces)
        self._longest_piece = max(map(len, self.pieces), default=0)
        self._standalone = frozenset([unknown, *self.reserved_tokens])
        self._cached_word_pieces = functools.lru_cache(maxsize=CACHED_WORDS)(self._word_pieces)

    @classmethod
    def from_vocab(cls, vocab, reserved_tokens: Iterable[str] = ()) -> WordPiece:
        """The tokenizer of a subword vocabulary (``zoo.text.Vocab``): its tokens other
        than ``reserved_tokens`` are the pieces; a word that is itself a reserved token
        (a literal ``<unk>`` in a user's text) is the unknown token."""
        reserved = set(reserved_tokens)
        pieces = [token for token in vocab.idx_to_token if token not in reserved]
        return cls(pieces, unknown=UNK, reserved_tokens=sorted(reserved - {UNK}))

    def manifest(self) -> dict:
        """What, with the vocabulary file, defines ``tokenize`` for another implementation."""
        return {
            "kind": "wordpiece",
            "suffix_prefix": SUFFIX_PREFIX,
            "unknown": self.unknown,
            "max_chars_per_word": self.max_chars_per_word,
        }

    def tokenize_word(self, word: str) -> list[str]:
        """The pieces of one word."""
        return list(self._cached_word_pieces(word))

    def tokenize(self, words: Iterable[str]) -> list[str]:
        """The pieces of all the words, in order (each distinct word is cut once)."""
        pieces = []
        for word in words:
            pieces.extend(self._cached_word_pieces(word))
        return pieces

    def detokenize(self, pieces: Iterable[str]) -> list[str]:
        """The words that ``pieces`` spell: each ``##x`` is appended to the word before it.
        One with no word to continue (first, or after ``unknown`` or a reserved token)
        starts the word ``x``; ``##`` alone is a word."""
        words = []
        continuable = False
        for piece in pieces:
            if len(piece) > len(SUFFIX_PREFIX) and piece.startswith(SUFFIX_PREFIX):
                if continuable:
                    words[-1] += piece[len(SUFFIX_PREFIX) :]
                else:
                    words.append(piece[len(SUFFIX_PREFIX) :])
                    continuable = True
            else:
                words.append(piece)
                continuable = piece not in self._standalone
        return words

    def _word_pieces(self, word: str) -> tuple[str, ...]:
        if len(word) > self.max_chars_per_word or word in self._standalone:
            return (self.unknown,)
        pieces = []
        start = 0
        while start < len(word):
            prefix = SUFFIX_PREFIX if start else ""
            for end in range(min(len(word), start + self._longest_piece), start, -1):
                piece = prefix + word[start:end]
                if piece in self._piece_set:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return (self.unknown,)
        return tuple(pieces)

    def __repr__(self) -> str:
        return f"WordPiece(pieces={len(self.pieces)}, unknown={self.unknown!r})"
