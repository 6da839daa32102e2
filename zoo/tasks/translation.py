"""The translator task: fra-eng (or a user's TSV) → BLEU, with greedy and beam decoding."""

from __future__ import annotations

import time

import keras
import tensorflow as tf

from zoo.data import Vocab
from zoo.data.translation import translation_data_for
from zoo.decoding import SentenceTranslator
from zoo.decoding.keras_backend import KerasTranslator
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


def chapter_examples(translate, source: str) -> dict:
    """Each of the chapter's four sentences translated by ``translate`` (sentences →
    translations), with the translations that count as correct, its chapter-BLEU (k = 2)
    against the best of them, and whether it is one of them."""
    from zoo.metrics import bleu

    examples = {}
    for sentence, accepted in chapter_references(source).items():
        (translation,) = translate([sentence])
        examples[sentence] = {
            "translation": translation,
            "expected": CHAPTER_EXAMPLES[sentence],
            "accepted": accepted,
            "bleu": max(bleu(translation, reference, k=2) for reference in accepted),
            "exact": translation in accepted,
        }
    return examples


def write_translations(path, sources, beam, greedy, references) -> None:
    """The test translations, to read beside the scores: one line per distinct source,
    ``source<TAB>beam<TAB>greedy<TAB>reference[<TAB>reference...]``, under a header."""
    from zoo.training.run_directory import write_atomically

    lines = ["source\tbeam\tgreedy\treferences"]
    for row in zip(sources, beam, greedy, references, strict=True):
        lines.append("\t".join([*row[:3], *row[3]]))
    write_atomically(path, "\n".join(lines) + "\n")


def bleu_settings(preprocess: str) -> dict:
    """How sacrebleu scores a translator's output: case-insensitive unless the text keeps
    its case, and with Unicode punctuation split when the cleaning splits it."""
    return {
        "lowercase": preprocess != "none",
        "tokenize": "13a" if preprocess == "chapter" else "intl",
    }


def group_pairs(pairs, num_pairs: int):
    """The first ``num_pairs`` pairs by distinct source, so each is translated once:
    (the distinct sources as written, the source index of each pair, each source's
    references)."""
    groups: dict[str, list[int]] = {}  # cleaned source → its pairs, in order
    for index in range(num_pairs):
        groups.setdefault(pairs.source[index], []).append(index)
    group_of = {source: group for group, source in enumerate(groups)}
    sources = [pairs.source_raw[indices[0]] for indices in groups.values()]
    pair_groups = [group_of[pairs.source[index]] for index in range(num_pairs)]
    references = [[pairs.target_raw[index] for index in indices] for indices in groups.values()]
    return sources, pair_groups, references


def pairs_for_sources(pairs, num_sources: int) -> int:
    """The number of leading pairs that hold ``num_sources`` distinct sources."""
    seen = set()
    for index, source in enumerate(pairs.source):
        if source not in seen and len(seen) == num_sources:
            return index
        seen.add(source)
    return len(pairs)


class Translation:
    name = "translator"

    def prepare(self, recipe: dict, run, seed: int):
        spec = recipe["data"]
        paths = [run.path / "src_vocab.txt", run.path / "tgt_vocab.txt"]
        vocabs = [Vocab.load(path) if path.is_file() else None for path in paths]
        data = translation_data_for(spec, seed, *vocabs)
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
        """Target tokens (words and <eos>) of the training pairs: tokens_per_sec counts
        what the decoder predicts."""
        return data.num_target_tokens["train"]

    def warnings(self, recipe: dict, data) -> list[str]:
        """What would cost a user an hour, said in one line each before training."""
        found = []
        batch = recipe["data"]["batch_size"]
        if 0 < data.num_examples["validation"] < batch:
            found.append(
                f"the validation split has {data.num_examples['validation']:,} pairs, fewer "
                f"than one batch ({batch}): validation loss rests on them"
            )
        return found

    def steps_per_epoch(self, data, recipe: dict) -> int:
        """About: length buckets leave a few part-full batches."""
        return max(1, -(-data.num_examples["train"] // recipe["data"]["batch_size"]))

    def translator(self, model, src_vocab, tgt_vocab, recipe) -> SentenceTranslator:
        """The trained model as a ``SentenceTranslator`` (sentences in, sentences out)."""
        return SentenceTranslator.from_recipe(KerasTranslator(model), src_vocab, tgt_vocab, recipe)

    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        from zoo.export.translator import TranslatorExport

        return TranslatorExport(model, recipe, run_path, data, beam_width)

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
        from zoo.metrics import corpus_bleu

        split = recipe["evaluate"]["split"]
        session = self.translator(model, data.src_vocab, data.tgt_vocab, recipe)
        pairs = data.test_pairs if split == "test" else data.validation_pairs
        if not len(pairs):
            raise ZooError(f"the {split} split holds no sentence pairs to evaluate on")
        limit = recipe["evaluate"]["max_sentences"] or len(pairs)
        num_pairs = min(limit, len(pairs))
        sources, pair_groups, all_references = group_pairs(pairs, num_pairs)
        start = time.perf_counter()
        beam = session.translate(sources, warn=False)  # one count below, not a line each
        seconds = time.perf_counter() - start
        sources_cut = session.cut
        greedy = session.translate(sources, beam_width=1, warn=False)
        # Pair i gets the translation of its source, against its own reference.
        references = pairs.target_raw[:num_pairs]
        scoring = bleu_settings(recipe["data"]["preprocess"])
        score, signature = corpus_bleu(
            [beam[group] for group in pair_groups], references, **scoring
        )
        greedy_score, _ = corpus_bleu(
            [greedy[group] for group in pair_groups], references, **scoring
        )
        write_translations(
            run.result_path("translations.tsv"), sources, beam, greedy, all_references
        )
        multi_score, multi_signature = corpus_bleu(beam, all_references, **scoring)
        # the chapter's sentences and translations are fra-eng's, cleaned its way: another
        # corpus or cleaning is not measured against them
        chapter = (
            recipe["data"]["source"] == "fra_eng" and recipe["data"]["preprocess"] == "chapter"
        )
        examples = chapter_examples(session.translate, recipe["data"]["source"]) if chapter else {}
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
            **({"chapter_examples": examples} if chapter else {}),
        }
