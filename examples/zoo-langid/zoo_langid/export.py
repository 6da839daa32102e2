"""What a language identifier's export holds: a ``classify`` signature, char ids in and
the labels' probabilities out, as a SavedModel (any batch) and as builtin-only TFLite
files (one sentence), checked against the Keras model on held-out sentences: the largest
difference of the probabilities and how often the labels agree; each file's accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.export.exporter import TaskExport, tensor_specs, timed
from zoo.export.litert import LITERT_APIS, LiteRTModel
from zoo.export.tflite import convert, write_saved_model
from zoo.text.vocab import PAD, UNK
from zoo_langid.runtime import INPUT, OUTPUT, SIGNATURE
from zoo_langid.task import accuracy_metrics
from zoo_langid.text import LABELS

PARITY_SENTENCES = 500  # held-out sentences each backend classifies
CALIBRATION_SENTENCES = 64
LATENCY_REPEATS = 20


class LanguageExport(TaskExport):
    def __init__(self, model, recipe: dict, run_path, data):
        self.model, self.recipe, self.run_path, self.data = model, recipe, Path(run_path), data
        self.max_chars = data.max_chars

    def assets(self):
        return [self.run_path / name for name in ("vocab.txt", "recipe.yaml")]

    def manifest(self) -> dict:
        vocab = self.data.vocab
        return {
            "char_vocab": {
                "file": "vocab.txt",
                "size": len(vocab),
                "special_ids": {token: vocab[token] for token in (PAD, UNK)},
            },
            "text": {"token_level": "char", "max_chars": self.max_chars},
            "labels": list(LABELS),
            "usage": [
                f"take the sentence's first max_chars ({self.max_chars}) characters as "
                "written, map each with vocab.txt (line = id; unknown: <unk>) and pad with "
                f"<pad> (id 0) to {self.max_chars} ids",
                f"run classify on {INPUT} [1, {self.max_chars}] int32; {OUTPUT} [1, "
                f"{len(LABELS)}] are the probabilities of labels ({', '.join(LABELS)})",
            ],
        }

    def signatures(self, batch_size):
        return {
            SIGNATURE: (
                lambda ids: {OUTPUT: tf.nn.softmax(self.model(ids, training=False))},
                [tf.TensorSpec([batch_size, self.max_chars], tf.int32, name=INPUT)],
            )
        }

    def saved_model_signatures(self):
        return self.signatures(None), []

    def write_saved_model(self, path):
        write_saved_model(self.model, path, self.signatures(None))

    def convert(self, quantization):
        return convert(self.model, self.signatures(1), quantization, self.calibration)

    def calibration(self):
        for row in self.held_out_ids()[:CALIBRATION_SENTENCES]:
            yield SIGNATURE, {INPUT: row[None]}

    def signature_specs(self, litert: LiteRTModel) -> dict:
        return {
            SIGNATURE: tensor_specs(litert, SIGNATURE, {"inputs": [INPUT], "outputs": [OUTPUT]})
        }

    def held_out(self):
        """The first ``PARITY_SENTENCES`` sentences of the split the recipe evaluates."""
        return self.data.splits[self.recipe["evaluate"]["split"]].first(PARITY_SENTENCES)

    def held_out_ids(self) -> np.ndarray:
        return self.data.ids(self.held_out().sentences)

    def measure(self, folder: Path, files: list, with_saved_model: bool) -> dict:
        part, ids = self.held_out(), self.held_out_ids()
        reference = self.model.probabilities(ids)
        backends = {"keras": reference}  # the row the others are compared with
        if with_saved_model:
            classify = tf.saved_model.load(str(folder / "saved_model")).signatures[SIGNATURE]
            backends["saved_model"] = classify(**{INPUT: tf.constant(ids)})[OUTPUT].numpy()
        latency = {"unit": "seconds per sentence"}
        for entry in files:
            for api in LITERT_APIS:
                runner = LiteRTModel(folder / entry["file"], api=api)
                name = f"{entry['file']}/{api}"
                backends[name] = np.concatenate(
                    [runner.run(SIGNATURE, {INPUT: row[None]})[OUTPUT] for row in ids]
                )
                latency[name] = timed(
                    lambda runner=runner: runner.run(SIGNATURE, {INPUT: ids[:1]}), LATENCY_REPEATS
                )
        return {
            "parity": {
                "inputs": f"the first {len(ids)} sentences of the "
                f"{self.recipe['evaluate']['split']} split",
                "backends": {
                    name: {
                        "max_abs_difference": float(np.max(np.abs(values - reference))),
                        "same_label": float(np.mean(values.argmax(1) == reference.argmax(1))),
                    }
                    for name, values in backends.items()
                },
            },
            "quality": {
                "metric": "accuracy",
                "split": self.recipe["evaluate"]["split"],
                "scope": f"its first {len(ids):,} sentences",
                **{
                    name: accuracy_metrics(values.argmax(1), part.labels)["accuracy"]
                    for name, values in backends.items()
                },
            },
            "latency": latency,
        }
