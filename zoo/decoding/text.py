"""Text in, text out: a language model's continuation of a prefix and a translator's
translations, over any backend (the Keras model, a SavedModel, a TFLite file).

What turns text into ids (the chapter's cleaning, tokenization, the vocabulary) and ids
back into text is ``zoo.text``, the same code the training data goes through; the
settings come from a run's recipe or from an export's ``export.json``. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from zoo.decoding.beam_search import beam_search
from zoo.decoding.sampling import generate_tokens
from zoo.errors import ZooError
from zoo.text.formats import LanguageModelText, TranslationText
from zoo.text.sequences import encode_words
from zoo.text.vocab import BOS, EOS, PAD, UNK, Vocab


class TranslationInputError(ZooError):
    """A sentence that cannot be translated (an empty line)."""


class PrefixError(ZooError):
    """A prefix that leaves nothing to generate from."""


# Generating this many tokens or more shows a progress line on stderr.
PROGRESS_FROM = 1000


def show_progress(done: int, total: int) -> None:
    """``zoo: generated 1,200 of 10,000 tokens``, rewritten in place on stderr."""
    if done % 100 == 0 or done == total:
        end = "\n" if done == total else ""
        print(f"\rzoo: generated {done:,} of {total:,} tokens", end=end, file=sys.stderr)


@dataclass
class TextGenerator:
    """A language model with its vocabulary: prefix in, continuation out.

    Args:
        backend: a ``zoo.decoding.backends.LanguageModelBackend`` (Keras, SavedModel or
            LiteRT).
        vocab: the model's vocabulary.
        text: how text becomes tokens and back (the recipe's ``data``).
    """

    backend: object
    vocab: Vocab
    text: LanguageModelText = field(default_factory=LanguageModelText)

    def prefix_ids(self, prefix: str) -> tuple[str, list[int]]:
        """The cleaned prefix and its ids; a prefix that cleaning leaves empty is
        refused, and tokens the model never saw are named on stderr (they are read as
        <unk>)."""
        cleaned = self.text.clean(prefix)
        tokens = self.text.split(cleaned, end_last_line=False)
        if not cleaned.strip() or not tokens:
            kept = (
                "only letters are kept, lowercased"
                if self.text.preprocess == "chapter"
                else "it holds no token"
            )
            raise PrefixError(f"--prefix: nothing left of {prefix[:60]!r} after cleaning ({kept})")
        unseen = sorted({token for token in tokens if token not in self.vocab.token_to_idx})
        if unseen:
            print(
                f"zoo: warning: the model never saw {', '.join(map(repr, unseen[:10]))} "
                "in --prefix; read as <unk>",
                file=sys.stderr,
            )
        return cleaned, self.vocab[tokens]

    def generate(self, prefix, length, temperature=1.0, greedy=False, seed=None):
        """The cleaned prefix continued by ``length`` tokens, as text (progress on
        stderr from ``PROGRESS_FROM`` tokens)."""
        cleaned, ids = self.prefix_ids(prefix)
        progress = show_progress if length >= PROGRESS_FROM else None
        generated = generate_tokens(
            self.backend, ids, length, temperature, greedy, seed, progress=progress
        )
        continuation = self.text.join(self.vocab.to_tokens(generated))
        if self.text.token_level == "char" or cleaned.endswith(("\n", " ")):
            return cleaned + continuation
        if continuation.startswith("\n"):
            return cleaned + continuation
        return cleaned + " " + continuation


class SentenceTranslator:
    """A translator with its vocabularies: sentences in, sentences out.

    Sentences are cleaned and tokenized as the training pairs were, cut to
    ``num_steps - 1`` words, ended with <eos> and padded (``zoo.text.encode_words``);
    ``backend.encode`` reads them, and beam search (or greedy search, k = 1) calls
    ``backend.decode_step`` once per output word for every sentence and beam at once.
    Unless ``allow_unk``, <unk> is never chosen: a reader gains nothing from it, and the
    next best word is often right.

    Args:
        backend: a ``zoo.decoding.backends.TranslatorBackend`` (Keras, SavedModel or
            LiteRT).
        src_vocab, tgt_vocab: the vocabularies.
        num_steps: the source length the model reads (words + <eos>).
        max_length, beam_width, length_penalty_alpha: decoding defaults.
        text: how sentences become tokens and translations text (the recipe's
            ``data``); a subword tokenizer reads ``src_vocab``'s pieces.
        allow_unk: whether <unk> may be chosen. Defaults to False.
    """

    def __init__(
        self,
        backend,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        num_steps: int,
        max_length: int,
        beam_width: int = 4,
        length_penalty_alpha: float = 0.75,
        text: TranslationText | None = None,
        allow_unk: bool = False,
    ):
        self.backend, self.src_vocab, self.tgt_vocab = backend, src_vocab, tgt_vocab
        self.num_steps, self.max_length = num_steps, max_length
        self.text = (text or TranslationText()).with_vocab(src_vocab)
        self.beam_width, self.length_penalty_alpha = beam_width, length_penalty_alpha
        self.penalty = None
        if not allow_unk:
            self.penalty = np.where(np.arange(len(tgt_vocab)) == tgt_vocab[UNK], -np.inf, 0.0)
            self.penalty = self.penalty.astype("float32")
        self.cut = 0

    @classmethod
    def from_recipe(cls, backend, src_vocab, tgt_vocab, recipe: dict):
        decode = recipe["decode"]
        return cls(
            backend,
            src_vocab,
            tgt_vocab,
            num_steps=recipe["data"]["num_steps"],
            max_length=decode["max_length"],
            beam_width=decode["beam_width"],
            length_penalty_alpha=decode["length_penalty_alpha"],
            text=TranslationText.from_spec(recipe["data"]),
            allow_unk=decode.get("allow_unk", False),
        )

    def source_ids(self, sentences: list[str], warn: bool = True):
        """ids [n, num_steps] and valid lengths [n]; ``self.cut`` counts the sentences
        longer than ``num_steps - 1`` tokens, which are cut (with a warning on stderr
        unless ``warn`` is False)."""
        words = []
        unit = "subwords" if self.text.tokenizer == "subword" else "words"
        for number, sentence in enumerate(sentences, 1):
            sentence_words = self.text.tokens(sentence)
            if not sentence_words:
                where = f" (sentence {number})" if len(sentences) > 1 else ""
                raise TranslationInputError(f"cannot translate an empty sentence{where}")
            if len(sentence_words) > self.num_steps - 1 and warn:
                print(
                    f"zoo: warning: a sentence of {len(sentence_words)} {unit} is cut to the "
                    f"model's {self.num_steps - 1}: {sentence[:60]!r}",
                    file=sys.stderr,
                )
            words.append(sentence_words)
        self.cut = sum(len(sentence_words) > self.num_steps - 1 for sentence_words in words)
        return encode_words(words, self.src_vocab, self.num_steps)

    def decode_step(self, tokens, state):
        log_probs, state = self.backend.decode_step(np.asarray(tokens, np.int32), state)
        if self.penalty is not None:
            log_probs = log_probs + self.penalty
        return log_probs, state

    def translate(self, sentences, beam_width=None, alpha=None, warn=True) -> list[str]:
        beam_width = self.beam_width if beam_width is None else beam_width
        alpha = self.length_penalty_alpha if alpha is None else alpha
        ids, valid_len = self.source_ids(sentences, warn=warn)
        translations = []
        batch_size = self.backend.preferred_batch
        for start in range(0, len(ids), batch_size):
            rows = slice(start, start + batch_size)
            state = self.backend.encode(ids[rows], valid_len[rows])
            settings = {
                "batch_size": len(ids[rows]),
                "bos_id": self.tgt_vocab[BOS],
                "eos_id": self.tgt_vocab[EOS],
                "max_length": self.max_length,
            }
            result = beam_search(  # beam_width=1 is greedy search
                self.decode_step,
                state,
                beam_width=beam_width,
                length_penalty_alpha=alpha,
                **settings,
            )
            translations += [
                self.detokenize(row, length)
                for row, length in zip(result.tokens, result.lengths, strict=True)
            ]
        return translations

    def detokenize(self, ids, length) -> str:
        tokens = self.tgt_vocab.to_tokens([int(i) for i in ids[:length]])
        return self.text.join([token for token in tokens if token not in (EOS, PAD, BOS)])
