"""The sequence-model section's task: an autoregressive model of a noisy sine, judged by
its k-step-ahead predictions."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.data.sine import lag_features, noisy_sine
from zoo.export.saved_model import export_saved_model
from zoo.models import AutoregressiveModel


class SineData:
    """x_t = sin(0.01 t) + ε as τ-lag (features, label) pairs; the first ``num_train``
    pairs train, the rest are held out."""

    def __init__(self, spec: dict, seed: int):
        self.time, self.series = noisy_sine(spec["num_points"], spec["noise_std"], seed=seed)
        self.tau = spec["tau"]
        features, labels = lag_features(self.series, tau=self.tau)
        self.num_train = min(spec["num_train"], len(features) - 1)
        self.train = (
            tf.data.Dataset.from_tensor_slices(
                (features[: self.num_train], labels[: self.num_train])
            )
            .shuffle(self.num_train, seed=seed, reshuffle_each_iteration=True)
            .batch(spec["batch_size"])
            .prefetch(tf.data.AUTOTUNE)
        )
        self.validation = tf.data.Dataset.from_tensor_slices(
            (features[self.num_train :], labels[self.num_train :])
        ).batch(spec["batch_size"])


def multistep_predictions(model, series: np.ndarray, tau: int, max_horizon: int) -> np.ndarray:
    """Column k − 1 holds the k-step-ahead prediction x̂_{i+τ+k−1} made from the true
    x_i..x_{i+τ−1} and the model's own earlier predictions: [windows, max_horizon]."""
    num_windows = len(series) - tau - max_horizon + 1
    values = np.zeros((num_windows, tau + max_horizon), dtype="float32")
    for offset in range(tau):
        values[:, offset] = series[offset : offset + num_windows]
    for column in range(tau, tau + max_horizon):
        values[:, column] = np.asarray(model(values[:, column - tau : column], training=False))[
            :, 0
        ]
    return values[:, tau:]


class Autoregression:
    name = "autoregressive"

    def prepare(self, recipe: dict, run, seed: int) -> SineData:
        return SineData(recipe["data"], seed)

    def build_model(self, recipe: dict, data: SineData) -> keras.Model:
        model = AutoregressiveModel(**recipe["model"])
        model(tf.zeros((1, data.tau)))
        return model

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return []

    def tokens_per_epoch(self, data: SineData) -> int:
        return data.num_train

    def steps_per_epoch(self, data: SineData, recipe: dict) -> int:
        return max(1, -(-data.num_train // recipe["data"]["batch_size"]))

    def evaluate(self, model: keras.Model, data: SineData, recipe: dict, run) -> dict:
        """k-step-ahead MSE on the held-out part of the series, and a plot."""
        horizons = sorted(int(k) for k in recipe["evaluate"]["horizons"])
        predictions = multistep_predictions(model, data.series, data.tau, horizons[-1])
        metrics = {}
        for k in horizons:
            targets = data.series[data.tau + k - 1 : data.tau + k - 1 + len(predictions)]
            held_out = slice(data.num_train, None)
            errors = (predictions[:, k - 1] - targets)[held_out]
            metrics[f"mse_{k}_step"] = float(np.mean(errors**2))
        metrics["plot"] = str(self.plot(data, predictions, horizons, run.path / "predictions.png"))
        return metrics

    def plot(self, data: SineData, predictions: np.ndarray, horizons: list, path):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        figure, axis = pyplot.subplots(figsize=(8, 4))
        axis.plot(data.time, data.series, label="data", color="0.6", linewidth=1)
        for k in horizons:
            start = data.tau + k - 1
            axis.plot(
                data.time[start : start + len(predictions)],
                predictions[:, k - 1],
                label=f"{k}-step",
                linewidth=1,
            )
        axis.axvline(
            data.time[data.num_train + data.tau], color="black", linestyle=":", label="held out →"
        )
        axis.set_xlabel("time")
        axis.set_ylabel("x")
        axis.legend(loc="lower left", fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        pyplot.close(figure)
        return path

    def export(self, model: keras.Model, data: SineData, recipe: dict, run) -> dict:
        path = export_saved_model(
            model,
            run.export / "saved_model",
            {
                "serve": (
                    lambda features: {"prediction": model(features)},
                    [tf.TensorSpec([None, data.tau], tf.float32)],
                )
            },
            assets=(run.recipe_path,),
        )
        return {"saved_model": str(path)}
