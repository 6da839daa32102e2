"""The task ``sentence_language``: is a sentence English or French? Judged by accuracy on
held-out sentences.

Registered as zoo registers its own tasks (``zoo.registry.register_task``); nothing in
zoo knows its name. Imports no TensorFlow at import time, as the contract asks.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from zoo.limits import MAX_SENTENCE_TOKENS, MAX_SENTENCES
from zoo.recipe import BatchSize, MinFreq, Rate, Section, Source, Units, one_layer
from zoo.registry import register_task
from zoo.tasks import Task
from zoo_langid.text import LABELS

# What a pretrained model's card shows it classify: the translation chapter's examples.
CARD_SENTENCES = (
    "Go.",
    "Va !",
    "I lost.",
    "J'ai perdu.",
    "He's calm.",
    "Il est calme.",
    "I'm home.",
    "Je suis chez moi.",
)

# How many sentences a split gives at most; null: all of them.
Sentences = Annotated[int, Field(ge=1, le=MAX_SENTENCES)] | None


class DataSection(Section):
    # fra_eng (both sides of its pairs), a sentence<TAB>label file (labels en or fr;
    # split by a hash of the sentence) or {train, validation, test} such files
    source: Source = "fra_eng"
    # a sentence is cut to its first max_chars characters (and padded to them)
    max_chars: Annotated[int, Field(ge=1, le=MAX_SENTENCE_TOKENS)] = 48
    # training sentences drawn (seeded) from the train split
    max_train_sentences: Sentences = None
    # the validation split's first sentences, for validation loss
    max_validation_sentences: Sentences = None
    batch_size: BatchSize = 128
    # characters seen fewer times in training are <unk>
    min_freq: MinFreq = 2


class ModelSection(Section):
    embedding_dim: Units = 32
    # any registered sequence layer; it returns every step, averaged over the sentence
    encoder: one_layer("sequence")
    dropout: Rate = 0.0


class EvaluateSection(Section):
    split: Literal["validation", "test"] = "test"
    # the split's first sentences only
    max_sentences: Sentences = None


RECIPE_SECTIONS = {"data": DataSection, "model": ModelSection, "evaluate": EvaluateSection}


def accuracy_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """``accuracy`` over the sentences and each label's own (``accuracy_en``, ...)."""
    metrics = {"accuracy": float(np.mean(predicted == labels))}
    for number, label in enumerate(LABELS):
        of_label = labels == number
        if of_label.any():
            metrics[f"accuracy_{label}"] = float(np.mean(predicted[of_label] == number))
    return metrics


@register_task
class SentenceLanguage(Task):
    name = "sentence_language"
    recipe_sections = RECIPE_SECTIONS
    artifacts = {"vocab.txt": "vocab_size"}
    card_limitations = (
        "Tells English from French only: any other language is called one of the two. "
        "Trained on short, everyday Tatoeba sentences, cut to data.max_chars characters; "
        "a few words (a name, 'Non.', 'Allô ?') carry little evidence either way."
    )
    export_fields = (
        ("char_vocab.file", str),
        ("char_vocab.size", int),
        ("text.max_chars", int),
        ("labels", list),
    )
    export_tensors = ("signatures.classify.inputs", "signatures.classify.outputs")

    def prepare(self, recipe: dict, run, seed: int):
        """The data; the vocabulary is the run's own once it has one."""
        from zoo.text.vocab import Vocab
        from zoo_langid.data import language_data_for

        vocab_path = run.path / "vocab.txt"
        vocab = Vocab.load(vocab_path) if vocab_path.is_file() else None
        data = language_data_for(recipe["data"], seed, vocab)
        if vocab is None:
            data.vocab.save(vocab_path)
        return data

    def tokens_per_epoch(self, data) -> int:
        """Characters: tokens_per_sec counts what the encoder reads."""
        return data.num_train_chars

    def steps_per_epoch(self, data, recipe: dict) -> int:
        return max(1, -(-len(data.splits["train"]) // recipe["data"]["batch_size"]))

    def build_model(self, recipe: dict, data):
        import tensorflow as tf

        from zoo_langid.model import SentenceLanguageClassifier

        model = SentenceLanguageClassifier(len(data.vocab), len(LABELS), **recipe["model"])
        model(tf.zeros((1, data.max_chars), tf.int32))
        return model

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, data, recipe: dict, run) -> dict:
        """Accuracy on the recipe's ``evaluate.split`` (all of it, or its first
        ``max_sentences``), overall and per label; the sentences it gets wrong go to
        ``errors.tsv`` (sentence, label, predicted, its probability)."""
        from zoo.training.run_directory import write_atomically

        split = recipe["evaluate"]["split"]
        part = data.splits[split].first(recipe["evaluate"]["max_sentences"])
        probabilities = model.probabilities(data.ids(part.sentences))
        predicted = probabilities.argmax(axis=1)
        lines = ["sentence\tlabel\tpredicted\tprobability"]
        for sentence, label, guess, row in zip(
            part.sentences, part.labels, predicted, probabilities, strict=True
        ):
            if guess != label:
                lines.append(f"{sentence}\t{LABELS[label]}\t{LABELS[guess]}\t{row[guess]:.3f}")
        write_atomically(run.result_path("errors.tsv"), "\n".join(lines) + "\n")
        return {
            "split": split,
            **accuracy_metrics(predicted, part.labels),
            f"{split}_sentences": len(part),
        }

    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        from zoo_langid.export import LanguageExport

        return LanguageExport(model, recipe, run_path, data)

    def export_runtime(self, litert_model, manifest: dict, folder):
        """A ``zoo_langid.runtime.LanguageIdentifier`` over the export's ``classify``
        signature: sentences in, labels and probabilities out, without TensorFlow."""
        from zoo_langid.runtime import LanguageIdentifier

        return LanguageIdentifier.from_export(litert_model, manifest, folder)

    def tiny_overrides(self, folder) -> list[str]:
        """A few hundred sentences to train on, validate and evaluate."""
        return [
            "data.max_train_sentences=400",
            "data.max_validation_sentences=100",
            "evaluate.max_sentences=100",
        ]

    def card_samples(self, folder, metrics: dict) -> list[str]:
        """The model's label and probability for the translation chapter's sentences
        and their translations (its errors on the test split are in errors.tsv)."""
        from pathlib import Path

        from zoo.recipe import read_yaml
        from zoo.text.vocab import Vocab
        from zoo.training.run_directory import RunDirectory
        from zoo_langid.runtime import LanguageIdentifier

        # read from the folder's files: a model being published has no run marker yet
        folder = Path(folder)
        model = RunDirectory(folder).load_model(folder / "model.keras")
        identifier = LanguageIdentifier(
            model.probabilities,
            Vocab.load(folder / "vocab.txt"),
            read_yaml(folder / "recipe.yaml")["data"]["max_chars"],
            LABELS,
        )
        rows = ["| sentence | label | probability |", "| --- | --- | --- |"]
        for sentence, result in zip(
            CARD_SENTENCES, identifier.classify(CARD_SENTENCES), strict=True
        ):
            label = result["label"]
            rows.append(f"| {sentence} | {label} | {result['probabilities'][label]:.4f} |")
        return [*rows, "", "The held-out sentences it gets wrong are in errors.tsv."]
