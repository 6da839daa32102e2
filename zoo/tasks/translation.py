"""The translator task: fra-eng (or a user's TSV) → BLEU, with greedy and beam decoding."""

from __future__ import annotations

import sys
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.data import Vocab, translation_data
from zoo.data.preprocess import clean_translation, tokenize
from zoo.data.vocab import BOS, EOS, PAD, UNK
from zoo.errors import ZooError
from zoo.models import Translator

# The chapter's four examples, with the translations it expects.
CHAPTER_EXAMPLES = {
    "go .": "va !",
    "i lost .": "j'ai perdu .",
    "he's calm .": "il est calme .",
    "i'm home .": "je suis chez moi .",
}


def chapter_references(source: str) -> dict[str, list[str]]:
    """The chapter's four examples → the translations that count as correct: the one
    the chapter gives, then every other translation the corpus (any split) pairs with
    the same English sentence, preprocessed as the model's output is."""
    from zoo.data.translation import load_translation_splits

    accepted = {english: [french] for english, french in CHAPTER_EXAMPLES.items()}
    for pairs in load_translation_splits(source).values():
        for english, french in zip(pairs.source, pairs.target, strict=True):
            if english in accepted and french not in accepted[english]:
                accepted[english].append(french)
    return accepted


def write_translations(path, sources, beam, greedy, references) -> None:
    """The test translations, to read beside the scores: one line per distinct source,
    ``source<TAB>beam<TAB>greedy<TAB>reference[<TAB>reference...]``, under a header."""
    from zoo.training.run_directory import write_atomically

    lines = ["source\tbeam\tgreedy\treferences"]
    for row in zip(sources, beam, greedy, references, strict=True):
        lines.append("\t".join([*row[:3], *row[3]]))
    write_atomically(path, "\n".join(lines) + "\n")


class TranslationInputError(ZooError):
    """A sentence that cannot be translated (an empty line)."""


class TranslatorSession:
    """A trained translator with its vocabularies: sentences in, sentences out.

    Decoding is batched over sentences and beams; the only Python loop runs over
    time steps (see ``zoo.decoding.beam_search``).
    """

    def __init__(self, model: Translator, src_vocab: Vocab, tgt_vocab: Vocab, recipe: dict):
        self.model, self.src_vocab, self.tgt_vocab, self.recipe = (
            model,
            src_vocab,
            tgt_vocab,
            recipe,
        )
        self.num_steps = recipe["data"]["num_steps"]
        # Unless the recipe's decode.allow_unk says otherwise, <unk> is never chosen: a
        # reader gains nothing from it, and the next best word is often right.
        self.unk_penalty = None
        if not recipe["decode"].get("allow_unk", False):
            is_unk = np.arange(len(tgt_vocab)) == tgt_vocab[UNK]
            self.unk_penalty = tf.constant(np.where(is_unk, -np.inf, 0.0), tf.float32)
        self._step = tf.function(self._decoder_step, reduce_retracing=True)

    def _decoder_step(self, tokens, states, memory, memory_mask, context, keys):
        log_probs, new_states = self.model.decoder.step(
            tokens, states, memory, memory_mask, context, keys
        )
        if self.unk_penalty is not None:
            log_probs = log_probs + self.unk_penalty
        return log_probs, new_states

    def encode_sentences(self, sentences: list[str], warn: bool = True):
        """Cleaned, tokenized, ``<eos>``-terminated, truncated source ids and valid lengths.

        A sentence longer than the model's ``num_steps - 1`` words is cut, with a warning
        on stderr unless ``warn`` is False; ``self.cut`` counts the cut sentences.
        """
        ids, lengths = [], []
        self.cut = 0
        for sentence in sentences:
            words = tokenize(
                clean_translation(sentence),
                level="word",
                tokenizer=self.recipe["data"]["tokenizer"],
            )
            if not words:
                raise TranslationInputError("cannot translate an empty sentence")
            if len(words) > self.num_steps - 1:
                self.cut += 1
            if len(words) > self.num_steps - 1 and warn:
                print(
                    f"zoo: warning: a sentence of {len(words)} words is cut to the model's "
                    f"{self.num_steps - 1}: {sentence[:60]!r}",
                    file=sys.stderr,
                )
            row = self.src_vocab[words[: self.num_steps - 1]] + [self.src_vocab[EOS]]
            lengths.append(len(row))
            ids.append(row + [self.src_vocab[PAD]] * (self.num_steps - len(row)))
        return np.asarray(ids, dtype="int32"), np.asarray(lengths, dtype="int32")

    def translate(
        self,
        sentences: list[str],
        beam_width: int | None = None,
        alpha: float | None = None,
        batch_size: int = 256,
        warn: bool = True,
    ) -> list[str]:
        from zoo.decoding import beam_search

        decode = self.recipe["decode"]
        beam_width = decode["beam_width"] if beam_width is None else beam_width
        alpha = decode["length_penalty_alpha"] if alpha is None else alpha
        source, lengths = self.encode_sentences(sentences, warn=warn)
        translations = []
        for start in range(0, len(sentences), batch_size):
            memory, memory_mask, states, context = self.model.encode(
                source[start : start + batch_size], lengths[start : start + batch_size]
            )
            initial_state = {
                "states": list(states),
                "memory": memory,
                "memory_mask": memory_mask,
                "context": context,
                "keys": self.model.decoder.memory_keys(memory),
            }

            def step_fn(tokens, state):
                log_probs, new_states = self._step(
                    tf.constant(tokens, tf.int32),
                    state["states"],
                    state["memory"],
                    state["memory_mask"],
                    state["context"],
                    state["keys"],
                )
                return log_probs, {**state, "states": list(new_states)}

            result = beam_search(
                step_fn,
                initial_state,
                batch_size=len(memory),
                bos_id=self.tgt_vocab[BOS],
                eos_id=self.tgt_vocab[EOS],
                max_length=decode["max_length"],
                beam_width=beam_width,
                length_penalty_alpha=alpha,
            )
            translations += [
                self.detokenize(row, length)
                for row, length in zip(result.tokens, result.lengths, strict=True)
            ]
        return translations

    def detokenize(self, ids, length) -> str:
        tokens = self.tgt_vocab.to_tokens([int(i) for i in ids[:length]])
        return " ".join(token for token in tokens if token not in (EOS, PAD, BOS))


class Translation:
    name = "translator"

    def prepare(self, recipe: dict, run, seed: int):
        spec = recipe["data"]
        paths = [run.path / "src_vocab.txt", run.path / "tgt_vocab.txt"]
        vocabs = [Vocab.load(path) if path.is_file() else None for path in paths]
        data = translation_data(
            source=spec["source"],
            num_steps=spec["num_steps"],
            batch_size=spec["batch_size"],
            min_freq=spec["min_freq"],
            seed=seed,
            src_vocab=vocabs[0],
            tgt_vocab=vocabs[1],
            bucket=spec["bucket"],
            tokenizer=spec["tokenizer"],
        )
        for path, vocab in zip(paths, (data.src_vocab, data.tgt_vocab), strict=True):
            if not path.is_file():
                vocab.save(path)
        return data

    def build_model(self, recipe: dict, data) -> keras.Model:
        model = Translator(len(data.src_vocab), len(data.tgt_vocab), **recipe["model"])
        steps = recipe["data"]["num_steps"]
        model((tf.zeros((1, steps), tf.int32), tf.constant([1]), tf.zeros((1, steps), tf.int32)))
        return model

    def loss(self, data=None):
        # Padding is <pad>, id 0 by construction of the vocabulary (reserved tokens first).
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def metrics(self):
        return []

    def tokens_per_epoch(self, data) -> int:
        return data.num_examples["train"]

    def steps_per_epoch(self, data, recipe: dict) -> int:
        """About: length buckets leave a few part-full batches."""
        return max(1, -(-data.num_examples["train"] // recipe["data"]["batch_size"]))

    def session(self, model, data, recipe) -> TranslatorSession:
        return TranslatorSession(model, data.src_vocab, data.tgt_vocab, recipe)

    def evaluate(self, model: keras.Model, data, recipe: dict, run) -> dict:
        """sacrebleu corpus BLEU on the recipe's ``evaluate.split`` (the test split by
        default; the validation split to choose decoding settings on), beam and greedy,
        and the chapter's examples.

        Each distinct source sentence is translated once. ``bleu`` and ``bleu_greedy``
        score every pair against its own reference, as the data lists them;
        ``bleu_multi_reference`` scores each distinct source against all the
        translations the split holds for it. The counts are named after the split
        (``test_sentences``, ``validation_sentences``, ...).
        """
        from zoo.metrics import bleu, corpus_bleu

        split = recipe["evaluate"]["split"]
        session = self.session(model, data, recipe)
        pairs = data.test_pairs if split == "test" else data.validation_pairs
        if not len(pairs):
            raise ZooError(f"the {split} split holds no sentence pairs to evaluate on")
        limit = recipe["evaluate"]["max_sentences"] or len(pairs)
        num_pairs = min(limit, len(pairs))
        groups: dict[str, list[int]] = {}  # cleaned source → its pairs, in order
        for index in range(num_pairs):
            groups.setdefault(pairs.source[index], []).append(index)
        group_of = {source: group for group, source in enumerate(groups)}
        sources = [pairs.source_raw[indices[0]] for indices in groups.values()]
        start = time.perf_counter()
        beam = session.translate(sources, warn=False)  # one count below, not a line each
        seconds = time.perf_counter() - start
        sources_cut = session.cut
        greedy = session.translate(sources, beam_width=1, warn=False)
        # Pair i gets the translation of its source, against its own reference.
        pair_groups = [group_of[pairs.source[index]] for index in range(num_pairs)]
        references = pairs.target_raw[:num_pairs]
        score, signature = corpus_bleu([beam[group] for group in pair_groups], references)
        greedy_score, _ = corpus_bleu([greedy[group] for group in pair_groups], references)
        all_references = [
            [pairs.target_raw[index] for index in indices] for indices in groups.values()
        ]
        write_translations(
            run.result_path("translations.tsv"), sources, beam, greedy, all_references
        )
        multi_score, multi_signature = corpus_bleu(beam, all_references)
        examples = {}
        for source, accepted in chapter_references(recipe["data"]["source"]).items():
            (translation,) = session.translate([source])
            examples[source] = {
                "translation": translation,
                "expected": CHAPTER_EXAMPLES[source],
                "accepted": accepted,
                "bleu": max(bleu(translation, reference, k=2) for reference in accepted),
                "exact": translation in accepted,
            }
        decode = recipe["decode"]
        return {
            "split": split,
            "bleu": score,
            "bleu_greedy": greedy_score,
            "bleu_signature": signature,
            "bleu_multi_reference": multi_score,
            "bleu_multi_reference_signature": multi_signature,
            "beam_width": decode["beam_width"],
            "length_penalty_alpha": decode["length_penalty_alpha"],
            f"{split}_sentences": num_pairs,
            f"{split}_sources": len(sources),
            f"{split}_sources_cut": sources_cut,  # longer than num_steps - 1 words
            "sentences_per_sec": round(len(sources) / seconds, 1),
            "chapter_examples": examples,
        }
