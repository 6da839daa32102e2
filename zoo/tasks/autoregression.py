"""The sequence-model section's task: an autoregressive model of a noisy sine, judged by
its k-step-ahead predictions."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from zoo.limits import MAX_HORIZON, MAX_LAGS, MAX_NOISE_STD, MAX_SERIES_POINTS
from zoo.recipe import BatchSize, RecipeError, Section, layer_list
from zoo.registry import register_task
from zoo.tasks.base import Task


class DataSection(Section):
    source: Literal["sine"] = "sine"
    num_points: Annotated[int, Field(ge=10, le=MAX_SERIES_POINTS)] = 1000
    noise_std: Annotated[float, Field(ge=0.0, le=MAX_NOISE_STD)] = 0.2
    tau: Annotated[int, Field(ge=1, le=MAX_LAGS)] = 4
    # pairs that train, at most all but one (the rest are held out)
    num_train: Annotated[int, Field(ge=1, le=MAX_SERIES_POINTS)] = 600
    batch_size: BatchSize = 16


class ModelSection(Section):
    layers: layer_list("features")


class EvaluateSection(Section):
    # k of the k-step-ahead predictions measured on the held-out part
    horizons: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_HORIZON)]], Field(min_length=1, max_length=100)
    ] = [1, 4, 16, 64]


RECIPE_SECTIONS = {"data": DataSection, "model": ModelSection, "evaluate": EvaluateSection}


class SineData:
    """x_t = sin(0.01 t) + ε as τ-lag (features, label) pairs; the first ``num_train``
    pairs train, the rest are held out."""

    def __init__(self, spec: dict, seed: int):
        import tensorflow as tf

        from zoo.data.sine import lag_features, noisy_sine

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


# What this task's export.json holds beyond the common part (zoo/export/export.schema.json,
# whose $defs it refers to): zoo.export.manifest.export_schema() composes them.
EXPORT_SCHEMA = {
    "type": "object",
    "required": ["series"],
    "properties": {
        "series": {
            "type": "object",
            "required": ["tau"],
            "properties": {"tau": {"type": "integer", "minimum": 1}},
        },
        "signatures": {"required": ["serve"]},
    },
}


@register_task
class Autoregression(Task):
    name = "autoregressive"
    recipe_sections = RECIPE_SECTIONS
    export_schema = EXPORT_SCHEMA
    card_limitations = "A toy model of a synthetic noisy sine: it predicts nothing else."

    def card_samples(self, folder, metrics: dict) -> list[str]:
        return ["See the metrics above (k-step-ahead mean squared errors)."]

    def check_recipe(self, recipe: dict) -> None:
        check_series(recipe["data"], recipe["evaluate"]["horizons"])

    def prepare(self, recipe: dict, run, seed: int) -> SineData:
        return SineData(recipe["data"], seed)

    def build_model(self, recipe: dict, data: SineData):
        import tensorflow as tf

        from zoo.models import AutoregressiveModel

        model = AutoregressiveModel(**recipe["model"])
        model(tf.zeros((1, data.tau)))
        return model

    def loss(self):
        import keras

        return keras.losses.MeanSquaredError()

    def tokens_per_epoch(self, data: SineData) -> int:
        return data.num_train

    def steps_per_epoch(self, data: SineData, recipe: dict) -> int:
        return max(1, -(-data.num_train // recipe["data"]["batch_size"]))

    def evaluate(self, model, data: SineData, recipe: dict, run) -> dict:
        """k-step-ahead MSE on the held-out part of the series, and a plot."""
        horizons = sorted(int(k) for k in recipe["evaluate"]["horizons"])
        predictions = multistep_predictions(model, data.series, data.tau, horizons[-1])
        metrics = {}
        for k in horizons:
            targets = data.series[data.tau + k - 1 : data.tau + k - 1 + len(predictions)]
            held_out = slice(data.num_train, None)
            errors = (predictions[:, k - 1] - targets)[held_out]
            metrics[f"mse_{k}_step"] = float(np.mean(errors**2))
        metrics["plot"] = str(
            self.plot(data, predictions, horizons, run.result_path("predictions.png"))
        )
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

    def exporter(self, model, recipe: dict, run_path, data: SineData, beam_width=None):
        from zoo.export.series import SeriesExport

        return SeriesExport(model, recipe, run_path, data)


def check_series(data: dict, horizons: list) -> None:
    """The sine series must leave τ-lag pairs to train on, and after them a window for
    the longest k-step-ahead prediction."""
    num_points, tau = data["num_points"], data["tau"]
    if tau > num_points - 2:
        raise RecipeError(
            f"data.tau: must be at most data.num_points - 2 ({num_points - 2}) to leave a "
            f"pair to train on and one held out, got {tau}"
        )
    num_train = min(data["num_train"], num_points - tau - 1)  # as SineData cuts it
    longest = num_points - tau - num_train
    for index, horizon in enumerate(horizons):
        if horizon > longest:
            raise RecipeError(
                f"evaluate.horizons[{index}]: must be at most data.num_points - data.tau - "
                f"data.num_train ({longest}), the steps after the training pairs, got {horizon}"
            )
