"""The learning-rate schedule and weight averaging (``train.lr_schedule``,
``train.weight_averaging``): their values, what validation and the checkpoints hold,
and how a recipe asks for them."""

import math

import keras
import numpy as np
import pytest

from zoo.pipeline import run_recipe
from zoo.recipe import RecipeError, load_recipe
from zoo.training.callbacks import averaged_weights
from zoo.training.keras_internals import weight_average_pairs
from zoo.training.trainer import learning_rate, make_optimizer


def train_spec(**values):
    spec = {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "epochs": 4,
        "clip_norm": None,
        "weight_decay": 0.0,
        "patience": None,
        "lr_schedule": "constant",
        "min_learning_rate": 0.0,
        "weight_averaging": None,
    }
    spec.update(values)
    return spec


def test_a_constant_rate_is_the_recipe_value():
    assert learning_rate(train_spec(), steps_per_epoch=10) == 0.01


def test_the_cosine_schedule_falls_from_the_rate_to_the_minimum_over_all_epochs():
    schedule = learning_rate(
        train_spec(lr_schedule="cosine", min_learning_rate=0.001), steps_per_epoch=10
    )
    total = 4 * 10

    def expected(step):
        progress = min(step, total) / total
        return 0.001 + (0.01 - 0.001) * 0.5 * (1 + math.cos(math.pi * progress))

    for step in (0, 1, 10, 20, 39, 40, 100):
        assert float(schedule(step)) == pytest.approx(expected(step), rel=1e-5), step
    assert float(schedule(20)) == pytest.approx(0.0055, rel=1e-5)  # halfway
    assert float(schedule(1000)) == pytest.approx(0.001, rel=1e-5)  # held at the minimum


def small_model(averaging):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=make_optimizer(train_spec(weight_averaging=averaging)), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    for start in range(0, 64, 8):  # fit would end by copying the average into the model
        model.train_on_batch(x[start : start + 8], y[start : start + 8])
    return model


def averages(optimizer) -> list:
    """The moving averages of the weights ``optimizer`` averages (Keras keeps them private)."""
    return [average for _, average in weight_average_pairs(optimizer)]


def test_averaged_weights_swaps_in_the_moving_average_and_back():
    model = small_model(averaging=0.9)
    raw = [w.numpy() for w in model.trainable_weights]
    average = [a.numpy() for a in averages(model.optimizer)]
    assert not np.allclose(raw[0], average[0])  # eight steps at 0.9 lag behind
    with averaged_weights(model):
        for weight, expected in zip(model.trainable_weights, average, strict=True):
            np.testing.assert_array_equal(weight.numpy(), expected)
    for weight, expected in zip(model.trainable_weights, raw, strict=True):
        np.testing.assert_array_equal(weight.numpy(), expected)
    for kept, expected in zip(averages(model.optimizer), average, strict=True):
        np.testing.assert_array_equal(kept.numpy(), expected)


def test_without_averaging_the_block_changes_nothing():
    model = small_model(averaging=None)
    raw = [w.numpy() for w in model.trainable_weights]
    with averaged_weights(model):
        for weight, expected in zip(model.trainable_weights, raw, strict=True):
            np.testing.assert_array_equal(weight.numpy(), expected)


@pytest.mark.slow
def test_a_run_with_averaging_keeps_the_averaged_weights(small_recipe, tmp_path):
    path = small_recipe(
        epochs=1,
        weight_averaging=0.9,
        lr_schedule="cosine",
        min_learning_rate=0.001,
        export={"formats": []},
    )
    out = tmp_path / "averaged"
    run_recipe(str(path), out=str(out), seed=1)
    last = keras.saving.load_model(out / "checkpoints" / "last.keras")
    delivered = keras.saving.load_model(out / "model.keras")
    # last.keras holds the raw weights for training to go on from, and the average in
    # its optimizer; the one epoch is the best, and what the run delivers is its average.
    assert last.optimizer.use_ema and int(last.optimizer.iterations) > 0
    average = [a.numpy() for a in averages(last.optimizer)]
    raw = [w.numpy() for w in last.trainable_weights]
    assert not all(np.allclose(r, a) for r, a in zip(raw, average, strict=True))
    for weight, expected in zip(delivered.trainable_weights, average, strict=True):
        np.testing.assert_allclose(weight.numpy(), expected, rtol=0, atol=0)
    # The schedule travels with the optimizer: its rate is the cosine at the step reached.
    steps = int(last.optimizer.iterations)
    rate = float(last.optimizer.learning_rate)
    assert 0.001 <= rate < 0.01
    assert rate == pytest.approx(float(last.optimizer._learning_rate(steps)), rel=1e-6)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.weight_averaging=1.0", "train.weight_averaging: must be below 1.0, got 1.0"),
        ("train.weight_averaging=-0.5", "train.weight_averaging: must be at least 0.0"),
        ("train.lr_schedule=linear", "train.lr_schedule: expected one of constant, cosine"),
        ("train.min_learning_rate=-1", "train.min_learning_rate: must be at least 0.0"),
    ],
)
def test_bad_schedule_values_are_one_line(override, message):
    with pytest.raises(RecipeError) as error:
        load_recipe("lm-lstm", [override])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_the_average_warms_up_from_the_first_steps_weights():
    """Step t mixes in the new weights with momentum min(M, (1 + t) / (10 + t)), and the
    first step's weights start the average, so short runs are not pulled towards the
    random initial weights."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=make_optimizer(train_spec(weight_averaging=0.995)), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    kernel = model.layers[0].kernel
    expected = None
    for step in range(30):
        model.train_on_batch(x, y)
        momentum = 0.0 if step == 0 else min(0.995, (1 + step) / (10 + step))
        weight = kernel.numpy()
        expected = weight if expected is None else momentum * expected + (1 - momentum) * weight
    average = averages(model.optimizer)[0].numpy()
    np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-6)


def test_checkpoints_name_the_averaging_optimizer(tmp_path):
    model = small_model(averaging=0.9)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.use_ema and loaded.optimizer.ema_momentum == pytest.approx(0.9)
    for kept, expected in zip(averages(loaded.optimizer), averages(model.optimizer), strict=True):
        np.testing.assert_array_equal(kept.numpy(), expected.numpy())
