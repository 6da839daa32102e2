"""The translator task: fra-eng (or a user's TSV) → BLEU, with greedy and beam decoding."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from zoo.errors import ZooError
from zoo.limits import (
    MAX_BEAM_TOKENS,
    MAX_BEAM_WIDTH,
    MAX_DECODE_LENGTH,
    MAX_LAYERS,
    MAX_LENGTH_PENALTY_ALPHA,
    MAX_SENTENCE_TOKENS,
    MAX_SENTENCES,
    MAX_VOCAB_SIZE,
)
from zoo.recipe import (
    BatchSize,
    ExportSection,
    MinFreq,
    Rate,
    RecipeError,
    Section,
    Source,
    Units,
    check_product,
    layer_name,
    one_layer,
    section,
)
from zoo.registry import register_task
from zoo.tasks.base import Task, TaskActionError
from zoo.text.formats import PREPROCESS

# A beam's width: what decoding keeps, and the rows of an export's decode_step.
BeamWidth = Annotated[int, Field(ge=1, le=MAX_BEAM_WIDTH)]


class DataSection(Section):
    # a dataset name, a source<TAB>target file or {train, validation, test} files
    source: Source = "fra_eng"
    # chapter: lower case, a space before , . ! ?; lower / none: punctuation split
    # off words (¿ ¡ « » “ ” ; : … too), in lower case or as written. Left out (or
    # null): chapter for fra-eng, lower for a user's own pairs (cleaning_for_the_source)
    preprocess: Literal[PREPROCESS] = "chapter"
    # null: words; nltk: words and punctuation; subword: WordPiece pieces learned on
    # the train split, subword_vocab_size of them per language
    tokenizer: Literal["nltk", "subword"] | None = None
    subword_vocab_size: Annotated[int, Field(ge=16, le=MAX_VOCAB_SIZE)] = 8000
    num_steps: Annotated[int, Field(ge=2, le=MAX_SENTENCE_TOKENS)] = 20
    batch_size: BatchSize = 128
    min_freq: MinFreq = 2
    bucket: bool = True

    @model_validator(mode="before")
    @classmethod
    def cleaning_for_the_source(cls, section: Any) -> Any:
        """The chapter's rules were written for fra-eng's French: a user's own pairs (in
        Spanish, German, ...) get the punctuation-aware ``lower`` unless the recipe names
        a cleaning, so that ``¿Dónde`` is ``¿ dónde``."""
        if isinstance(section, dict) and section.get("preprocess") is None:
            chapter = section.get("source", "fra_eng") == "fra_eng"
            return {**section, "preprocess": "chapter" if chapter else "lower"}
        return section


class DecoderSection(Section):
    cell: layer_name("cell") = "gru_cell"
    units: Units = 256
    num_layers: Annotated[int, Field(ge=1, le=MAX_LAYERS)] = 2
    dropout: Rate = 0.0
    deep_output: bool = False
    tie_embeddings: bool = False


class ModelSection(Section):
    embedding_dim: Units = 256
    encoder: one_layer("sequence")
    decoder: DecoderSection = section()
    attention: one_layer("attention") | None = None
    sampled_softmax: Annotated[int, Field(ge=0, le=MAX_VOCAB_SIZE)] = 0
    embedding_dropout: Rate = 0.0


class DecodeSection(Section):
    beam_width: BeamWidth = 4
    length_penalty_alpha: Annotated[float, Field(ge=0.0, le=MAX_LENGTH_PENALTY_ALPHA)] = 0.75
    max_length: Annotated[int, Field(ge=1, le=MAX_DECODE_LENGTH)] = 30
    allow_unk: bool = False


class EvaluateSection(Section):
    split: Literal["validation", "test"] = "test"
    max_sentences: Annotated[int, Field(ge=1, le=MAX_SENTENCES)] | None = None


class TranslatorExportSection(ExportSection):
    # the rows of the TFLite decode_step: the beam width an app runs (None: the
    # recipe's decode.beam_width)
    beam_width: BeamWidth | None = None


RECIPE_SECTIONS = {
    "data": DataSection,
    "model": ModelSection,
    "decode": DecodeSection,
    "evaluate": EvaluateSection,
    "export": TranslatorExportSection,
}

# How many of the evaluated split's first sources get an attention heat map.
ATTENTION_MAPS = 3

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


def draw_attention_map(session, sentence: str, path, beam_width=None, alpha=None) -> str:
    """``session``'s translation of ``sentence`` (a ``SentenceTranslator`` over a
    Keras model with attention), its attention heat map written to ``path``."""
    from zoo.reports.figures import attention_map

    attention = session.attention(sentence, beam_width, alpha)
    attention_map(
        attention.weights,
        attention.source_tokens,
        attention.target_tokens,
        path,
        title=f"{sentence} → {attention.translation}",
    )
    return attention.translation


def example_sentence(run_path, recipe: dict) -> str:
    """A sentence to try a run's translator on: the first of its test translations
    (``translations.tsv``), or the chapter's ``i'm home .``."""
    path = Path(run_path) / "translations.tsv"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return lines[1].split("\t")[0] if len(lines) > 1 else "i'm home ."


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


# What this task's export.json holds beyond the common part (zoo/export/export.schema.json,
# whose $defs it refers to): zoo.export.manifest.export_schema() composes them.
EXPORT_SCHEMA = {
    "type": "object",
    "required": ["source_vocab", "target_vocab", "vocabulary_format", "decoding"],
    "properties": {
        "source_vocab": {
            "allOf": [{"$ref": "#/$defs/vocabulary"}],
            "required": ["special_ids"],
            "properties": {"special_ids": {"$ref": "#/$defs/special_ids"}},
        },
        "target_vocab": {
            "allOf": [{"$ref": "#/$defs/vocabulary"}],
            "required": ["special_ids"],
            "properties": {"special_ids": {"$ref": "#/$defs/special_ids"}},
        },
        "text": {"$ref": "#/$defs/text"},
        "decoding": {
            "description": "zoo translate's defaults and its search, step by step.",
            "type": "object",
            "required": [
                "num_steps",
                "max_length",
                "beam_width",
                "decode_step_rows",
                "length_penalty_alpha",
                "allow_unk",
                "never_emit",
                "score",
                "rows",
                "beam_search",
                "output",
            ],
            "properties": {
                "num_steps": {"type": "integer", "minimum": 2},
                "max_length": {"type": "integer", "minimum": 1},
                "beam_width": {"type": "integer", "minimum": 1},
                "decode_step_rows": {"type": "integer", "minimum": 1},
                "length_penalty_alpha": {"type": "number", "minimum": 0},
                "allow_unk": {"type": "boolean"},
                "never_emit": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "score": {"type": "string"},
                "rows": {"type": "string"},
                "beam_search": {"$ref": "#/$defs/prose"},
                "output": {"$ref": "#/$defs/prose"},
            },
            "additionalProperties": False,
        },
        "signatures": {"required": ["encode", "decode_step"]},
    },
}


@register_task
class Translation(Task):
    name = "translator"
    recipe_sections = RECIPE_SECTIONS
    artifacts = {"src_vocab.txt": "src_vocab_size", "tgt_vocab.txt": "tgt_vocab_size"}
    card_limitations = (
        "Trained on short, simple, everyday Tatoeba sentences: it translates sentences of "
        "up to num_steps - 1 words, lowercase and tokenized as the corpus is (`i'm home .`); "
        "longer ones are cut, unknown words become <unk>, and long, formal or "
        "domain-specific text is out of its reach. Not for any use where a wrong "
        "translation matters."
    )

    actions = frozenset({"translate"})
    export_fields = (
        ("source_vocab.file", str),
        ("source_vocab.size", int),
        ("target_vocab.file", str),
        ("target_vocab.size", int),
        ("decoding.num_steps", int),
        ("decoding.max_length", int),
        ("decoding.beam_width", int),
        ("decoding.length_penalty_alpha", (int, float)),
        ("decoding.allow_unk", bool),
    )
    export_schema = EXPORT_SCHEMA
    export_scored_vocabularies = {"target_vocab": ("decode_step", "log_probs")}
    export_tensors = (
        "signatures.encode.inputs",
        "signatures.encode.outputs",
        "signatures.decode_step.inputs",
        "signatures.decode_step.outputs",
    )

    def check_recipe(self, recipe: dict) -> None:
        model, decode, export = recipe["model"], recipe["decode"], recipe["export"]
        decoder = model["decoder"]
        if decoder["tie_embeddings"] and decoder["units"] != model["embedding_dim"]:
            raise RecipeError(
                f"model.decoder.tie_embeddings: needs model.decoder.units ({decoder['units']}) "
                f"equal to model.embedding_dim ({model['embedding_dim']})"
            )
        for path, beam_width in (
            ("decode.beam_width", decode["beam_width"]),
            ("export.beam_width", export["beam_width"]),
        ):
            if beam_width is not None:
                check_product(
                    path,
                    beam_width,
                    "decode.max_length",
                    decode["max_length"],
                    MAX_BEAM_TOKENS,
                    "tokens of beam history a sentence",
                )

    def prepare(self, recipe: dict, run, seed: int):
        from zoo.data.translation import translation_data_for
        from zoo.text.vocab import Vocab

        spec = recipe["data"]
        paths = [run.path / "src_vocab.txt", run.path / "tgt_vocab.txt"]
        vocabs = [Vocab.load(path) if path.is_file() else None for path in paths]
        data = translation_data_for(spec, seed, *vocabs)
        for path, vocab in zip(paths, (data.src_vocab, data.tgt_vocab), strict=True):
            if not path.is_file():
                vocab.save(path)
        return data

    def build_model(self, recipe: dict, data):
        import tensorflow as tf

        from zoo.models import Translator

        model = Translator(len(data.src_vocab), len(data.tgt_vocab), **recipe["model"])
        steps = recipe["data"]["num_steps"]
        model((tf.zeros((1, steps), tf.int32), tf.constant([1]), tf.zeros((1, steps), tf.int32)))
        return model

    def loss(self):
        import keras

        # Padding is <pad>, id 0 by construction of the vocabulary (reserved tokens first).
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def tokens_per_epoch(self, data) -> int:
        """Target tokens (words and <eos>) of the training pairs: tokens_per_sec counts
        what the decoder predicts."""
        return data.num_target_tokens["train"]

    def tiny_overrides(self, folder) -> list[str]:
        """fra-eng's first 400 training pairs and 40 of each held-out split, as three
        files, and at most 20 of them translated."""
        from pathlib import Path

        from zoo.data.tfds_columns import split_columns

        overrides = ["evaluate.max_sentences=20"]
        for split, count in (("train", 400), ("validation", 40), ("test", 40)):
            columns = split_columns("fra_eng", split)
            rows = zip(columns["en_raw"][:count], columns["fr_raw"][:count], strict=True)
            path = Path(folder) / f"{split}.tsv"
            path.write_text(
                "".join(f"{en.decode()}\t{fr.decode()}\n" for en, fr in rows), encoding="utf-8"
            )
            overrides.append(f"data.source.{split}={path}")
        return overrides

    def card_samples(self, folder, metrics: dict) -> list[str]:
        """The chapter's four sentences: against its answers when the model is of
        fra-eng (``chapter_examples`` in its metrics), else its translations alone."""
        if "chapter_examples" in metrics:
            rows = [
                "| English | translation | the chapter's | exact |",
                "| --- | --- | --- | --- |",
            ]
            for source, example in metrics["chapter_examples"].items():
                rows.append(
                    f"| {source} | {example['translation']} | {example['expected']} | "
                    f"{'yes' if example['exact'] else 'no'} |"
                )
            return rows
        from zoo.pipeline import translate_with_run

        sentences = list(CHAPTER_EXAMPLES)
        translations = translate_with_run(str(folder), sentences)
        rows = ["| source | translation |", "| --- | --- |"]
        rows += [f"| {s} | {t} |" for s, t in zip(sentences, translations, strict=True)]
        return rows

    def describe_data(self, recipe: dict) -> dict:
        from zoo.data.descriptions import describe_sentence_pairs

        return describe_sentence_pairs(recipe["data"])

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

    def export_runtime(self, litert_model, manifest: dict, folder):
        """A ``zoo.decoding.SentenceTranslator`` over the export's ``encode`` and
        ``decode_step`` signatures, decoding as ``export.json`` says."""
        from zoo.decoding import SentenceTranslator
        from zoo.export.litert import LiteRTTranslator, checked_vocab
        from zoo.text.formats import TranslationText

        decoding = manifest["decoding"]
        return SentenceTranslator(
            LiteRTTranslator(litert_model, manifest),
            checked_vocab(folder, manifest, "source_vocab", litert_model),
            checked_vocab(folder, manifest, "target_vocab", litert_model),
            num_steps=decoding["num_steps"],
            max_length=decoding["max_length"],
            beam_width=decoding["beam_width"],
            length_penalty_alpha=decoding["length_penalty_alpha"],
            text=TranslationText.from_spec(manifest["text"]),
            allow_unk=decoding["allow_unk"],
        )

    def translator(self, model, src_vocab, tgt_vocab, recipe):
        """The trained model as a ``zoo.decoding.SentenceTranslator`` (sentences in,
        sentences out)."""
        from zoo.decoding import SentenceTranslator
        from zoo.decoding.keras_backend import KerasTranslator

        return SentenceTranslator.from_recipe(KerasTranslator(model), src_vocab, tgt_vocab, recipe)

    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        from zoo.export.translator import TranslatorExport

        return TranslatorExport(model, recipe, run_path, data, beam_width)

    def evaluate(self, model, data, recipe: dict, run) -> dict:
        """sacrebleu corpus BLEU on the recipe's ``evaluate.split`` (the test split by
        default; the validation split to choose decoding settings on), beam and greedy,
        and the chapter's examples.

        Each distinct source sentence is translated once. ``bleu`` and ``bleu_greedy``
        score every pair against its own reference, as the data lists them;
        ``bleu_multi_reference`` scores each distinct source against all the
        translations the split holds for it. The counts are named after the split
        (``test_sentences``, ``validation_sentences``, ...). A model with attention
        draws the heat maps of the first ``ATTENTION_MAPS`` sources (``attention-1.png``
        ..., listed in ``attention_maps``).
        """
        session = self.translator(model, data.src_vocab, data.tgt_vocab, recipe)
        metrics, sources = self.score(session, data, recipe, run.result_path)
        maps = []
        if recipe["model"]["attention"] is not None:
            for number, source in enumerate(sources[:ATTENTION_MAPS], start=1):
                path = run.result_path(f"attention-{number}.png")
                draw_attention_map(session, source, path)
                maps.append(str(path))
        return {**metrics, **({"attention_maps": maps} if maps else {})}

    def evaluate_export(self, runtime, data, recipe: dict) -> dict:
        """``evaluate``'s BLEU figures, of the exported file that ``runtime`` runs."""
        return self.score(runtime, data, recipe)[0]

    def score(self, session, data, recipe: dict, result_path=None) -> tuple[dict, list]:
        """(``evaluate``'s figures of a ``SentenceTranslator``, the distinct sources);
        ``result_path``: where ``translations.tsv`` goes, if anywhere."""
        from zoo.metrics import corpus_bleu

        split = recipe["evaluate"]["split"]
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
        if result_path is not None:
            write_translations(
                result_path("translations.tsv"), sources, beam, greedy, all_references
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
        }, sources

    def draw_attention(self, model, run_path, recipe: dict, sentence: str, path, **decoding):
        """The heat map of ``sentence``'s translation (``zoo translate --attention``)."""
        from zoo.text.vocab import Vocab

        if recipe["model"]["attention"] is None:
            raise TaskActionError(
                "--attention: this translator has no attention (its recipe's model.attention "
                "is null)"
            )
        vocabs = [Vocab.load(Path(run_path) / name) for name in self.artifacts]
        session = self.translator(model, *vocabs, recipe)
        return draw_attention_map(session, sentence, path, **decoding)

    def headline(self, results: dict, recipe: dict) -> list[str]:
        """BLEU on the evaluated split, beam and greedy, with sacrebleu's signature."""
        split = results["split"]
        return [
            f"{split} BLEU {results['bleu']:.1f} (beam {results['beam_width']}, "
            f"α {results['length_penalty_alpha']:g}; greedy {results['bleu_greedy']:.1f}) on "
            f"{results[f'{split}_sentences']:,} sentence pairs",
            f"sacrebleu {results['bleu_signature']}",
        ]

    def try_next(self, run_path, recipe: dict) -> list[str]:
        """Translate a sentence of the run's own test split (the chapter's for
        fra-eng), with its attention map when the model has attention."""
        import shlex

        run = shlex.quote(str(run_path))
        sentence = shlex.quote(example_sentence(run_path, recipe))
        commands = [f"zoo translate {run} {sentence}"]
        if recipe["model"]["attention"] is not None:
            commands.append(f"zoo translate {run} {sentence} --attention attention.png")
        return [*commands, *super().try_next(run_path, recipe)]
