"""Text in, text out: a language model's continuation of a prefix and a translator's
translations, over any backend (the Keras model, a SavedModel, a TFLite file).

What turns text into ids (the chapter's cleaning, tokenization, the vocabulary) and ids
back into text is ``zoo.text``, the same code the training data goes through; the
settings come from a run's recipe or from an export's ``export.json``. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from zoo.decoding.beam_search import beam_search
from zoo.decoding.sampling import generate_tokens
from zoo.errors import ZooError
from zoo.text.cleaning import clean_time_machine, clean_translation, tokenize
from zoo.text.sequences import encode_words
from zoo.text.vocab import BOS, EOS, PAD, UNK, Vocab


class TranslationInputError(ZooError):
    """A sentence that cannot be translated (an empty line)."""


@dataclass
class TextGenerator:
    """A language model with its vocabulary: prefix in, continuation out.

    Args:
        backend: ``initial_states`` and ``step`` (see ``generate_tokens``).
        vocab: the model's vocabulary.
        token_level: "char" or "word".
        tokenizer: for words, None (whitespace) or "nltk".
    """

    backend: object
    vocab: Vocab
    token_level: str = "char"
    tokenizer: str | None = None

    def prefix_ids(self, prefix: str) -> tuple[str, list[int]]:
        """The cleaned prefix and its ids."""
        cleaned = clean_time_machine(prefix)
        tokens = tokenize(cleaned, level=self.token_level, tokenizer=self.tokenizer)
        return cleaned, self.vocab[tokens]

    def generate(self, prefix, length, temperature=1.0, greedy=False, seed=None, progress=None):
        """The cleaned prefix continued by ``length`` tokens, as text."""
        cleaned, ids = self.prefix_ids(prefix)
        generated = generate_tokens(
            self.backend, ids, length, temperature, greedy, seed, progress=progress
        )
        if self.token_level == "char":
            return cleaned + "".join(self.vocab.to_tokens(generated))
        return cleaned + " " + " ".join(self.vocab.to_tokens(generated))


class SentenceTranslator:
    """A translator with its vocabularies: sentences in, sentences out.

    Sentences are cleaned and tokenized as the training pairs were, cut to
    ``num_steps - 1`` words, ended with <eos> and padded (``zoo.text.encode_words``);
    ``backend.encode`` reads them, and beam search (or greedy search, k = 1) calls
    ``backend.decode_step`` once per output word for every sentence and beam at once.
    Unless ``allow_unk``, <unk> is never chosen: a reader gains nothing from it, and the
    next best word is often right.

    Args:
        backend: ``encode(ids [b, num_steps], valid_len [b]) → state`` (a dict of
            arrays or tensors with b rows) and ``decode_step(tokens [n], state) →
            (log-probabilities [n, vocab], state)``, and ``preferred_batch``, the
            sentences it takes at once.
        src_vocab, tgt_vocab: the vocabularies.
        num_steps: the source length the model reads (words + <eos>).
        max_length, beam_width, length_penalty_alpha: decoding defaults.
        tokenizer: None (whitespace) or "nltk".
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
        tokenizer: str | None = None,
        allow_unk: bool = False,
    ):
        self.backend, self.src_vocab, self.tgt_vocab = backend, src_vocab, tgt_vocab
        self.num_steps, self.max_length, self.tokenizer = num_steps, max_length, tokenizer
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
            tokenizer=recipe["data"]["tokenizer"],
            allow_unk=decode.get("allow_unk", False),
        )

    def source_ids(self, sentences: list[str], warn: bool = True):
        """ids [n, num_steps] and valid lengths [n]; ``self.cut`` counts the sentences
        longer than ``num_steps - 1`` words, which are cut (with a warning on stderr
        unless ``warn`` is False)."""
        words = []
        for number, sentence in enumerate(sentences, 1):
            sentence_words = tokenize(
                clean_translation(sentence), level="word", tokenizer=self.tokenizer
            )
            if not sentence_words:
                where = f" (sentence {number})" if len(sentences) > 1 else ""
                raise TranslationInputError(f"cannot translate an empty sentence{where}")
            if len(sentence_words) > self.num_steps - 1 and warn:
                print(
                    f"zoo: warning: a sentence of {len(sentence_words)} words is cut to the "
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
        return " ".join(token for token in tokens if token not in (EOS, PAD, BOS))
