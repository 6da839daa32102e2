"""What an autoregressive (sine) model's export holds: a ``serve`` signature, τ lagged
values in and the next value out, as a SavedModel and as builtin-only TFLite files, with
the Keras model's predictions on the held-out windows as the parity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.export.exporter import TaskExport, tensor_specs
from zoo.export.litert import LITERT_APIS, LiteRTModel, op_names
from zoo.export.tflite import convert, write_saved_model

PARITY_WINDOWS = 64  # held-out windows each backend predicts


class SeriesExport(TaskExport):
    def __init__(self, model, recipe: dict, run_path: Path, data):
        self.model, self.recipe, self.run_path, self.data = model, recipe, Path(run_path), data

    def size_note(self, files: list) -> str | None:
        return None  # no embedding: the dynamic file is as small as quantization makes it

    def assets(self):
        return [self.run_path / "recipe.yaml"]

    def manifest(self) -> dict:
        return {
            "text": {},
            "series": {"tau": self.data.tau},
            "usage": [
                f"feed the last tau ({self.data.tau}) values of the series, oldest first, as "
                "features [batch, tau] float32 to the serve signature",
                "prediction [batch, 1] is the next value; to predict k steps ahead, append "
                "it to the series and feed the last tau values again",
            ],
        }

    def signatures(self, batch_size):
        return {
            "serve": (
                lambda features: {"prediction": self.model(features)},
                [tf.TensorSpec([batch_size, self.data.tau], tf.float32, name="features")],
            )
        }

    def saved_model_signatures(self):
        return self.signatures(None), []

    def write_saved_model(self, path):
        write_saved_model(self.model, path, self.signatures(None))

    def convert(self, quantization):
        return convert(self.model, self.signatures(1), quantization, self.calibration)

    def calibration(self):
        for window in self.windows()[:PARITY_WINDOWS]:
            yield "serve", {"features": window[None]}

    def signature_specs(self, litert: LiteRTModel) -> dict:
        return {
            "serve": tensor_specs(
                litert, "serve", {"inputs": ["features"], "outputs": ["prediction"]}
            )
        }

    def windows(self) -> np.ndarray:
        """The held-out τ-lag windows [windows, τ]."""
        series, tau = self.data.series, self.data.tau
        starts = range(self.data.num_train, len(series) - tau)
        return np.stack([series[start : start + tau] for start in starts]).astype(np.float32)

    def targets(self) -> np.ndarray:
        """The value after each held-out window [windows, 1]."""
        return self.data.series[self.data.num_train + self.data.tau :, None].astype(np.float32)

    def measure(self, folder: Path, files: list, with_saved_model: bool) -> dict:
        windows = self.windows()[:PARITY_WINDOWS]
        reference = np.asarray(self.model(windows, training=False))
        predictions = {}
        if with_saved_model:
            serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
            predictions["saved_model"] = serve(features=tf.constant(windows))["prediction"].numpy()
        for entry in files:
            for api in LITERT_APIS:
                runner = LiteRTModel(folder / entry["file"], api=api)
                rows = [
                    runner.run("serve", {"features": window[None]})["prediction"]
                    for window in windows
                ]
                predictions[f"{entry['file']}/{api}"] = np.concatenate(rows)
        held_out, targets = self.windows(), self.targets()
        quality = {
            "metric": "mean squared error of the next value",
            "split": "held-out",
            "scope": f"{len(held_out):,} windows",
            "keras": float(np.mean((np.asarray(self.model(held_out)) - targets) ** 2)),
        }
        for entry in files:
            runner = LiteRTModel(folder / entry["file"])
            rows = [
                runner.run("serve", {"features": window[None]})["prediction"] for window in held_out
            ]
            quality[entry["file"]] = float(np.mean((np.concatenate(rows) - targets) ** 2))
            entry["ops"] = op_names((folder / entry["file"]).read_bytes())
        return {
            "quality": quality,
            "parity": {
                "inputs": f"the first {len(windows)} held-out windows of {self.data.tau} values",
                "backends": {
                    name: {"max_abs_difference": float(np.max(np.abs(values - reference)))}
                    for name, values in predictions.items()
                },
            },
        }
