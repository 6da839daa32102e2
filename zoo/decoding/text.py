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
# Translating this many sentences or more shows a progress bar on a terminal.
PROGRESS_FROM_SENTENCES = 500


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


@dataclass(frozen=True)
class TranslationAttention:
    """A translation with its attention weights: ``weights`` [len(target_tokens),
    len(source_tokens)], row t the weights over the source of the step that chose
    target token t; <eos> is a token on both sides."""

    translation: str
    source_tokens: list[str]
    target_tokens: list[str]
    weights: np.ndarray


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

    def search(self, ids, valid_len, beam_width=None, alpha=None):
        """Beam search (greedy at ``beam_width`` 1) over the sentences ``ids`` [b,
        num_steps] → ``zoo.decoding.beam_search.BeamSearchResult``."""
        beam_width = self.beam_width if beam_width is None else beam_width
        alpha = self.length_penalty_alpha if alpha is None else alpha
        return beam_search(
            self.decode_step,
            self.backend.encode(ids, valid_len),
            beam_width=beam_width,
            length_penalty_alpha=alpha,
            batch_size=len(ids),
            bos_id=self.tgt_vocab[BOS],
            eos_id=self.tgt_vocab[EOS],
            max_length=self.max_length,
        )

    def translate(self, sentences, beam_width=None, alpha=None, warn=True) -> list[str]:
        """The translations of ``sentences``; with a progress bar on a terminal from
        ``PROGRESS_FROM_SENTENCES`` of them (a split's evaluation, an export's quality)."""
        from zoo.reports.progress import ProgressBar, on_terminal

        ids, valid_len = self.source_ids(sentences, warn=warn)
        translations = []
        batch_size = self.backend.preferred_batch
        bar = None
        if len(ids) >= PROGRESS_FROM_SENTENCES and on_terminal():
            bar = ProgressBar("translating", len(ids), "sentences")
        for start in range(0, len(ids), batch_size):
            rows = slice(start, start + batch_size)
            result = self.search(ids[rows], valid_len[rows], beam_width, alpha)
            translations += [
                self.detokenize(row, length)
                for row, length in zip(result.tokens, result.lengths, strict=True)
            ]
            if bar is not None:
                bar.update(len(translations))
        if bar is not None:
            bar.close()
        return translations

    def attention(self, sentence: str, beam_width=None, alpha=None) -> TranslationAttention:
        """The translation of ``sentence`` and how it read the sentence. Needs a backend
        that gives attention weights (a run's model)."""
        weights_of = getattr(self.backend, "attention_weights", None)
        if weights_of is None:
            raise TranslationInputError(
                "attention weights: an export's files do not give them; use the run's folder"
            )
        ids, valid_len = self.source_ids([sentence])
        result = self.search(ids, valid_len, beam_width, alpha)
        target = [int(token) for token in result.tokens[0][: result.lengths[0]]]
        decoder_input = np.asarray([[self.tgt_vocab[BOS], *target[:-1]]], np.int32)
        weights = weights_of(ids, valid_len, decoder_input)[0][:, : valid_len[0]]
        return TranslationAttention(
            translation=self.detokenize(target, len(target)),
            source_tokens=self.src_vocab.to_tokens([int(i) for i in ids[0][: valid_len[0]]]),
            target_tokens=self.tgt_vocab.to_tokens(target),
            weights=weights,
        )

    def detokenize(self, ids, length) -> str:
        tokens = self.tgt_vocab.to_tokens([int(i) for i in ids[:length]])
        return self.text.join([token for token in tokens if token not in (EOS, PAD, BOS)])
