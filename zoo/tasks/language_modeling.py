"""The language-model task: Time Machine (or a user's text) → perplexity."""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf

from zoo.data import Vocab
from zoo.data.language_modeling import language_model_data_for, pretraining_data
from zoo.decoding import TextGenerator
from zoo.decoding.keras_backend import KerasLanguageModel
from zoo.metrics import Perplexity
from zoo.models import LanguageModel
from zoo.text.formats import LanguageModelText
from zoo.text.vocab import EOS, UNK

# Above this, one-hot inputs (embedding_dim 0) are worth a warning.
ONE_HOT_LIMIT = 512
# A training text with more than this share of <unk> is worth a warning.
UNKNOWN_LIMIT = 0.5

# A word-level model's embedding and output layer start from PyTorch's initializers
# (zoo.layers.initializers): from Keras' its validation perplexity was 296 after three
# epochs, 52 from these (benchmarks/learning_parity.py). Character-level models keep
# Keras' (LanguageModel's defaults), with which the shipped ones were trained.
WORD_LEVEL_INITIALIZERS = {
    "embedding_initializer": "unit_normal",
    "head_initializer": "fan_in_uniform",
}

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


class LanguageModeling:
    name = "language_model"

    def prepare(self, recipe: dict, run, seed: int):
        """The data; the vocabulary is the run's own once it has one."""
        spec = recipe["data"]
        vocab_path = run.path / "vocab.txt"
        vocab = Vocab.load(vocab_path) if vocab_path.is_file() else None
        data = language_model_data_for(spec, seed, vocab)
        if vocab is None:
            data.vocab.save(vocab_path)
        return data

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

    def build_model(self, recipe: dict, data) -> keras.Model:
        """The recipe's model; an initializer the recipe leaves null is the one for its
        ``data.token_level`` (``WORD_LEVEL_INITIALIZERS`` for words)."""
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
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return [Perplexity()]

    def tokens_per_epoch(self, data) -> int:
        return data.num_tokens["train"]

    def steps_per_epoch(self, data, recipe: dict) -> int:
        spec = recipe["data"]
        return max(1, data.num_tokens["train"] // (spec["batch_size"] * spec["num_steps"]))

    def evaluate(self, model: keras.Model, data, recipe: dict, run) -> dict:
        """Exact per-token perplexity of each split the recipe names, reading the split
        as running text: the state is carried from one chunk to the next, so no token is
        predicted from a cold start except the first of each stream. Validation and test
        are one stream; the train split is cut into ``batch_size`` contiguous streams.
        With ``line_ends: eos`` a validation or test stream starts from ``<eos>``, so
        that every one of its tokens is scored."""
        forward = tf.function(model.forward, reduce_retracing=True)
        metrics = {}
        for split in recipe["evaluate"]["splits"]:
            streams = recipe["data"]["batch_size"] if split == "train" else 1
            ids = scored_ids(data, recipe, split) if streams == 1 else data.token_ids[split]
            perplexity = stream_perplexity(forward, ids, streams)
            metrics[SPLIT_METRICS[split]] = float(perplexity.result())
            metrics[f"{split}_tokens"] = int(perplexity.num_tokens.numpy())
        return metrics

    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        from zoo.export.language_model import LanguageModelExport

        return LanguageModelExport(model, recipe, run_path, data)

    def generator(self, model, vocab, recipe: dict) -> TextGenerator:
        """The trained model as a ``TextGenerator`` (prefix in, continuation out)."""
        return TextGenerator(
            KerasLanguageModel(model), vocab, LanguageModelText.from_spec(recipe["data"])
        )
