"""The language-model task: Time Machine (or a user's text) → perplexity."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field

from zoo.limits import MAX_NUM_STEPS, MAX_UNITS
from zoo.recipe import (
    BatchSize,
    Epochs,
    LearningRate,
    MinFreq,
    Rate,
    RecipeError,
    Section,
    Source,
    layer_list,
)
from zoo.registry import register_task
from zoo.tasks.base import Task
from zoo.text.formats import LINE_ENDS, PREPROCESS, LanguageModelText
from zoo.text.vocab import EOS, UNK

if TYPE_CHECKING:
    from zoo.metrics import Perplexity

# Above this, one-hot inputs (embedding_dim 0) are worth a warning.
ONE_HOT_LIMIT = 512
# A training text with more than this share of <unk> is worth a warning.
UNKNOWN_LIMIT = 0.5

# What a language model's embedding and output layer may start from (the names of
# zoo.layers.initializers and Keras' that suit them; a test resolves each).
LANGUAGE_MODEL_INITIALIZERS = (
    "uniform",
    "normal",
    "unit_normal",
    "glorot_uniform",
    "fan_in_uniform",
    "lecun_uniform",
)


class DataSection(Section):
    # a dataset name, a text file (split 90/5/5) or {train, validation, test} files
    source: Source = "time_machine"
    # chapter: letters only, lower case; lower: the text in lower case; none: as is
    preprocess: Literal[PREPROCESS] = "chapter"
    # with preprocess lower or none: a line end is one space, or the token <eos>
    line_ends: Literal[LINE_ENDS] = "space"
    token_level: Literal["char", "word"] = "char"
    tokenizer: Literal["nltk"] | None = None
    num_steps: Annotated[int, Field(ge=1, le=MAX_NUM_STEPS)] = 32
    batch_size: BatchSize = 32
    sampler: Literal["random", "sequential"] = "random"
    min_freq: MinFreq = 0


class ModelSection(Section):
    # 0: one-hot inputs
    embedding_dim: Annotated[int, Field(ge=0, le=MAX_UNITS)] = 0
    # each runs one step at a time, to generate
    layers: layer_list("stepping")
    dropout: Rate = 0.0
    # null: by data.token_level, Keras' for characters (uniform: U(±0.05);
    # glorot_uniform), PyTorch's for words (unit_normal: N(0, 1); fan_in_uniform:
    # U(±1/√fan_in)); see zoo/layers/initializers.py. The layers' own initializers
    # are arguments of each layer in model.layers.
    embedding_initializer: Literal[LANGUAGE_MODEL_INITIALIZERS] | None = None
    head_initializer: Literal[LANGUAGE_MODEL_INITIALIZERS] | None = None
    # the output layer is the embedding transposed (Press & Wolf 2017): needs
    # embedding_dim equal to the last layer's units
    tie_embeddings: bool = False
    # while training: the share of word types whose embedding is zeroed wherever
    # they occur in a batch (Gal & Ghahramani 2016)
    embedding_dropout: Rate = 0.0
    # while training: dropout of each layer's outputs, one mask per sequence for
    # all its steps (Merity et al. 2017); a layer's own dropout does its inputs
    locked_dropout: Rate = 0.0


class PretrainSection(Section):
    """Before `train`, the same model may first read a larger text: "fra_eng_english"
    (the English side of fra-eng) or a text file's path. Its epochs are as long as the
    training epochs; the optimizer, schedule, clipping and weight averaging are those of
    `train`, with this learning rate."""

    source: str | None = None
    epochs: Epochs = 24
    learning_rate: LearningRate = 0.002
    # pretrain only when data.source is one of these (null: for any data), so a
    # recipe tuned for one corpus does not pretrain a user's text unasked
    for_sources: Annotated[list[str], Field(max_length=100)] | None = None


class EvaluateSection(Section):
    splits: Annotated[list[Literal["train", "validation", "test"]], Field(max_length=3)] = [
        "validation",
        "test",
    ]


RECIPE_SECTIONS = {
    "data": DataSection,
    "model": ModelSection,
    "pretrain": PretrainSection,
    "evaluate": EvaluateSection,
}

# A word-level model's embedding and output layer start from PyTorch's initializers
# (zoo.layers.initializers): from Keras' its validation perplexity was 296 after three
# epochs, 52 from these (benchmarks/learning_parity.py). Character-level models keep
# Keras' (LanguageModel's defaults), with which the shipped ones were trained.
WORD_LEVEL_INITIALIZERS = {
    "embedding_initializer": "unit_normal",
    "head_initializer": "fan_in_uniform",
}

# what a model card's samples continue
SAMPLE_PREFIX = "time traveller"

SPLIT_METRICS = {"test": "perplexity", "validation": "val_perplexity", "train": "train_perplexity"}


def stream_perplexity(forward, token_ids, num_streams: int, chunk_steps: int = 512) -> Perplexity:
    """Perplexity of ``token_ids`` cut into ``num_streams`` contiguous rows, each read
    left to right in chunks with the state carried across chunks.

    Shapes: token_ids [num_tokens]; each row predicts (num_tokens - 1) // num_streams
    tokens.
    """
    row_length = (len(token_ids) - 1) // num_streams
    used = row_length * num_streams
    inputs = token_ids[:used].reshape(num_streams, row_length)
    targets = token_ids[1 : used + 1].reshape(num_streams, row_length)
    from zoo.metrics import Perplexity

    perplexity, states = Perplexity(), None
    for start in range(0, row_length, chunk_steps):
        logits, states = forward(inputs[:, start : start + chunk_steps], states)
        perplexity.update_state(targets[:, start : start + chunk_steps], logits)
    return perplexity


def scored_ids(data, recipe: dict, split: str) -> np.ndarray:
    """A split's ids as one running text is scored: after the first token, or with
    ``line_ends: eos`` after an ``<eos>`` put before it (a text of lines starts after a
    line end), so that every one of its tokens is scored, as word-level benchmarks count."""
    ids = np.asarray(data.token_ids[split])
    if recipe["data"]["line_ends"] == "eos":
        return np.concatenate([[data.vocab[EOS]], ids]).astype(ids.dtype)
    return ids


# What this task's export.json holds beyond the common part (zoo/export/export.schema.json,
# whose $defs it refers to): zoo.export.manifest.export_schema() composes them.
EXPORT_SCHEMA = {
    "type": "object",
    "required": ["vocab", "vocabulary_format", "decoding"],
    "properties": {
        "vocab": {
            "allOf": [{"$ref": "#/$defs/vocabulary"}],
            "required": ["unk_id"],
            "properties": {"unk_id": {"type": "integer", "minimum": 0}},
        },
        "text": {
            "allOf": [{"$ref": "#/$defs/text"}],
            "required": ["token_level", "line_ends"],
            "properties": {"line_ends": {"enum": ["space", "eos"]}},
        },
        "decoding": {
            "description": "zoo generate's defaults and how it generates.",
            "type": "object",
            "required": ["length", "temperature", "greedy", "steps", "output"],
            "properties": {
                "length": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "exclusiveMinimum": 0},
                "greedy": {"type": "boolean"},
                "steps": {"$ref": "#/$defs/prose"},
                "output": {"type": "string", "minLength": 1},
            },
            "additionalProperties": False,
        },
        "signatures": {"required": ["step"]},
    },
}


@register_task
class LanguageModeling(Task):
    name = "language_model"
    recipe_sections = RECIPE_SECTIONS
    artifacts = {"vocab.txt": "vocab_size"}
    card_limitations = (
        "A small character-level model of one Victorian novel: it continues text in the "
        "book's spelling and vocabulary and knows nothing else; its output is not meant to "
        "be true or safe. Lowercase letters, spaces and basic punctuation only."
    )

    actions = frozenset({"generate"})
    export_schema = EXPORT_SCHEMA
    export_scored_vocabularies = {"vocab": ("step", "logits")}
    export_fields = (("vocab.file", str), ("vocab.size", int))
    export_tensors = ("signatures.step.inputs", "signatures.step.outputs", "signatures.step.states")

    def check_recipe(self, recipe: dict) -> None:
        if recipe["model"]["tie_embeddings"]:
            check_tied(recipe["model"])

    def prepare(self, recipe: dict, run, seed: int):
        """The data; the vocabulary is the run's own once it has one."""
        from zoo.data.language_modeling import language_model_data_for
        from zoo.text.vocab import Vocab

        spec = recipe["data"]
        vocab_path = run.path / "vocab.txt"
        vocab = Vocab.load(vocab_path) if vocab_path.is_file() else None
        data = language_model_data_for(spec, seed, vocab)
        if vocab is None:
            data.vocab.save(vocab_path)
        return data

    def tiny_overrides(self, folder) -> list[str]:
        """The shipped book's first 24,000 characters, lines kept, as three files; any
        recipe's pretraining (for its own source) is then skipped."""
        from pathlib import Path

        from zoo.data.shipped_files import shipped_file
        from zoo.data.time_machine import SOURCE_FILE

        lines = shipped_file(SOURCE_FILE).read_text(encoding="utf-8")[:24_000].splitlines()
        parts = {"train": lines[:-60], "validation": lines[-60:-30], "test": lines[-30:]}
        overrides = []
        for split, part in parts.items():
            path = Path(folder) / f"{split}.txt"
            path.write_text("\n".join(part) + "\n", encoding="utf-8")
            overrides.append(f"data.source.{split}={path}")
        return overrides

    def card_samples(self, folder, metrics: dict) -> list[str]:
        """Greedy and sampled continuations of the chapter's "time traveller"."""
        from zoo.pipeline import generate_from_run

        greedy = generate_from_run(str(folder), SAMPLE_PREFIX, 100, greedy=True)
        sampled = generate_from_run(str(folder), SAMPLE_PREFIX, 100, temperature=0.8, seed=0)
        return [
            f"Greedy, 100 tokens after “{SAMPLE_PREFIX}”:",
            "",
            f"    {greedy}",
            "",
            "Sampled at temperature 0.8 (seed 0):",
            "",
            f"    {sampled}",
        ]

    def describe_data(self, recipe: dict) -> dict:
        from zoo.data.descriptions import describe_text_corpus

        return describe_text_corpus(recipe["data"])

    def warnings(self, recipe: dict, data) -> list[str]:
        """What would cost a user an hour, said in one line each before training."""
        spec, found = recipe["data"], []
        width = len(data.vocab)
        if not recipe["model"]["embedding_dim"] and width > ONE_HOT_LIMIT:
            found.append(
                f"model.embedding_dim is 0: one-hot inputs {width:,} wide make every step a "
                f"{width:,}-wide product; set model.embedding_dim (e.g. 256)"
            )
        train_ids = data.token_ids["train"]
        unknown = float(np.mean(train_ids == data.vocab[UNK])) if len(train_ids) else 0.0
        if unknown > UNKNOWN_LIMIT:
            found.append(
                f"{unknown:.0%} of the training tokens are <unk> (data.min_freq "
                f"{spec['min_freq']}): the model would mostly learn to predict <unk>"
            )
        window = spec["batch_size"] * spec["num_steps"]
        if data.num_tokens["validation"] < window:
            found.append(
                f"the validation split has {data.num_tokens['validation']:,} tokens, fewer "
                f"than one batch ({spec['batch_size']} × {spec['num_steps']}): validation "
                "loss and early stopping rest on it"
            )
        return found

    def pretraining(self, recipe: dict, data):
        """The pretraining stage of ``pretrain.source``, or ``None`` without one:
        ``(stage_recipe, stage_data, description)``. An epoch of it has as many batches as
        an epoch of training; ``train``'s settings apply, with ``pretrain``'s epochs and
        learning rate, and no early stopping."""
        spec, data_spec = recipe["pretrain"], recipe["data"]
        if spec["source"] is None:
            return None
        if spec["for_sources"] is not None and data_spec["source"] not in spec["for_sources"]:
            print(
                f"zoo: not pretraining on {spec['source']}: this recipe pretrains for "
                f"{', '.join(spec['for_sources'])} only (set pretrain.for_sources=null to "
                "pretrain before your data too)",
                file=sys.stderr,
            )
            return None
        from zoo.data.language_modeling import pretraining_data

        steps = self.steps_per_epoch(data, recipe)
        stage_data = pretraining_data(
            spec["source"],
            data,
            text=LanguageModelText.from_spec(data_spec),
            num_steps=data_spec["num_steps"],
            batch_size=data_spec["batch_size"],
            steps_per_epoch=steps,
            seed=recipe["seed"],
        )
        stage_train = {
            **recipe["train"],
            "epochs": spec["epochs"],
            "learning_rate": spec["learning_rate"],
            "patience": None,
        }
        description = (
            f"{spec['source']} ({spec['epochs']} epochs of {steps} batches; "
            f"{len(stage_data.token_ids['pretrain']):,} tokens a pass)"
        )
        return {**recipe, "train": stage_train}, stage_data, description

    def build_model(self, recipe: dict, data):
        """The recipe's model; an initializer the recipe leaves null is the one for its
        ``data.token_level`` (``WORD_LEVEL_INITIALIZERS`` for words)."""
        import tensorflow as tf

        from zoo.models import LanguageModel

        spec = {key: value for key, value in recipe["model"].items() if value is not None}
        if recipe["data"]["token_level"] == "word":
            spec = {**WORD_LEVEL_INITIALIZERS, **spec}
        model = LanguageModel(len(data.vocab), **spec)
        model(tf.zeros((1, recipe["data"]["num_steps"]), tf.int32))
        return model

    def training_callbacks(self, model, recipe: dict) -> list:
        """With the sequential sampler the state carries from batch to batch (the
        chapter's sequential partitioning), reset at each epoch; the random sampler's
        windows are independent and start from zeros."""
        if recipe["data"]["sampler"] != "sequential":
            return []
        from zoo.training.callbacks import ResetCarriedStates

        model.carry_states(recipe["data"]["batch_size"])
        return [ResetCarriedStates()]

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        from zoo.metrics import Perplexity

        return [Perplexity()]

    def tokens_per_epoch(self, data) -> int:
        return data.num_tokens["train"]

    def steps_per_epoch(self, data, recipe: dict) -> int:
        spec = recipe["data"]
        return max(1, data.num_tokens["train"] // (spec["batch_size"] * spec["num_steps"]))

    def evaluate(self, model, data, recipe: dict, run) -> dict:
        """Exact per-token perplexity of each split the recipe names, reading the split
        as running text: the state is carried from one chunk to the next, so no token is
        predicted from a cold start except the first of each stream. Validation and test
        are one stream; the train split is cut into ``batch_size`` contiguous streams.
        With ``line_ends: eos`` a validation or test stream starts from ``<eos>``, so
        that every one of its tokens is scored."""
        import tensorflow as tf

        forward = tf.function(model.forward, reduce_retracing=True)
        metrics = {}
        for split in recipe["evaluate"]["splits"]:
            streams = recipe["data"]["batch_size"] if split == "train" else 1
            ids = scored_ids(data, recipe, split) if streams == 1 else data.token_ids[split]
            perplexity = stream_perplexity(forward, ids, streams)
            metrics[SPLIT_METRICS[split]] = float(perplexity.result())
            metrics[f"{split}_tokens"] = int(perplexity.num_tokens.numpy())
        return metrics

    def headline(self, results: dict, recipe: dict) -> list[str]:
        """Each evaluated split's perplexity, exact per token over the split read as
        running text."""
        splits = [split for split, metric in SPLIT_METRICS.items() if metric in results]
        first, others = splits[0], splits[1:]
        lines = [
            f"{first} perplexity {results[SPLIT_METRICS[first]]:.2f} "
            f"({results[f'{first}_tokens']:,} tokens, exact per token, state carried through)"
        ]
        if others:
            lines.append(
                ", ".join(f"{split} {results[SPLIT_METRICS[split]]:.2f}" for split in others)
            )
        return lines

    def try_next(self, run_path, recipe: dict) -> list[str]:
        """Continue a prefix: the chapter's for The Time Machine, else ``the`` when the
        run's vocabulary knows it (as a word or as letters), else its most frequent word."""
        import shlex

        from zoo.text.vocab import Vocab

        prefix = "the time traveller"
        if recipe["data"]["source"] != "time_machine":
            tokens = Vocab.load(Path(run_path) / "vocab.txt").idx_to_token
            known = "the" in tokens or set("the") <= set(tokens)
            prefix = "the" if known else next((t for t in tokens if t.isalpha()), "the")
        run = shlex.quote(str(run_path))
        return [
            f"zoo generate {run} --prefix {shlex.quote(prefix)} --length 40",
            *super().try_next(run_path, recipe),
        ]

    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        from zoo.export.language_model import LanguageModelExport

        return LanguageModelExport(model, recipe, run_path, data)

    def export_runtime(self, litert_model, manifest: dict, folder):
        """A ``zoo.decoding.TextGenerator`` over the export's ``step`` signature."""
        from zoo.decoding import TextGenerator
        from zoo.export.litert import LiteRTLanguageModel, checked_vocab

        vocab = checked_vocab(folder, manifest, "vocab", litert_model)
        return TextGenerator(
            LiteRTLanguageModel(litert_model, manifest),
            vocab,
            LanguageModelText.from_spec(manifest["text"]),
        )

    def generator(self, model, vocab, recipe: dict):
        """The trained model as a ``zoo.decoding.TextGenerator`` (prefix in,
        continuation out)."""
        from zoo.decoding import TextGenerator
        from zoo.decoding.keras_backend import KerasLanguageModel

        return TextGenerator(
            KerasLanguageModel(model), vocab, LanguageModelText.from_spec(recipe["data"])
        )


def check_tied(model: dict) -> None:
    """Tied embeddings read the last layer's outputs through the embedding matrix, so
    both must be as wide (no projection between them: Merity et al. size the last
    layer to the embedding instead)."""
    top_units = model["layers"][-1].get("units")
    if not model["embedding_dim"] or (
        top_units is not None and top_units != model["embedding_dim"]
    ):
        raise RecipeError(
            f"model.tie_embeddings: needs model.embedding_dim ({model['embedding_dim']}) equal "
            f"to the last layer's units ({top_units}); set model.layers[-1].units to it"
        )
