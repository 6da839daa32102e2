"""zoo.training.keras_internals: every private Keras/TensorFlow attribute it lists still
exists in the installed versions, and replacements take the parameters of what they
replace; nothing outside the module touches one; the trainer's fixes are in place only
inside the ``fit`` of a distributed training, and Keras' own functions are back after it."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

from zoo.training.distribute import Distribution, track_loss
from zoo.training.keras_internals import (
    PRIVATE_ATTRIBUTES,
    OptimizerHooks,
    distributed_fit_fixes,
)

ZOO = Path(__file__).resolve().parents[1] / "zoo"
TRAINER = tf_trainer.TensorFlowTrainer
# what the trainer's fixes replace, as Keras defines it (a method a subclass inherits
# is looked up on the class, so an inherited one compares equal to what it inherits)
TRAINER_FUNCTIONS = [
    (tf_trainer, "reduce_per_replica"),
    (TRAINER, "_maybe_symbolic_build"),
    (TRAINER, "_get_metrics_result_or_logs"),
]


def resolve(path: str):
    """The module or class a dotted path names."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(path)


def built_adam():
    optimizer = keras.optimizers.Adam(use_ema=True)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    return optimizer


# An instance of each class whose private instance attributes zoo reads.
INSTANCES = {
    "keras.src.backend.tensorflow.trainer.TensorFlowTrainer": lambda: keras.Sequential(
        [keras.layers.Dense(1)]
    ),
    "keras.src.backend.tensorflow.trainer.TFEpochIterator": lambda: tf_trainer.TFEpochIterator(
        distribute_strategy=tf.distribute.get_strategy(),
        x=tf.data.Dataset.from_tensors((tf.zeros((2, 3)), tf.zeros((2, 1)))),
    ),
    "keras.optimizers.Optimizer": built_adam,
    "tensorflow.python.eager.context.Context": lambda: resolve(
        "tensorflow.python.eager.context.context"
    )(),
}


def originals() -> list:
    return [vars(owner).get(name) for owner, name in TRAINER_FUNCTIONS]


@pytest.mark.parametrize(
    "attribute", PRIVATE_ATTRIBUTES, ids=lambda item: f"{item.owner.split('.')[-1]}.{item.name}"
)
def test_every_private_attribute_still_exists(attribute):
    owner = resolve(attribute.owner)
    if attribute.on_instance:
        owner = INSTANCES[attribute.owner]()
    assert hasattr(owner, attribute.name), (
        f"{attribute.owner}.{attribute.name} is gone from the installed Keras/TensorFlow: "
        "zoo/training/keras_internals.py needs updating, and setup.cfg's pinned range"
    )


@pytest.mark.parametrize(
    "attribute",
    [item for item in PRIVATE_ATTRIBUTES if item.replaced],
    ids=lambda item: item.name,
)
def test_every_replacement_takes_the_parameters_of_what_it_replaces(attribute):
    owner = resolve(attribute.owner)
    original = getattr(owner, attribute.name)
    if attribute.name in vars(OptimizerHooks):  # a hook the optimizers' mixin overrides
        replacement = vars(OptimizerHooks)[attribute.name]
    else:
        with distributed_fit_fixes("multi_worker"):
            replacement = getattr(owner, attribute.name)
    assert replacement is not original
    assert inspect.signature(replacement) == inspect.signature(original)


PRIVATE_PATTERNS = [r"keras\.src", r"tensorflow\.python", r"tensorflow\.compiler", r"_loss_tracker"]


def test_nothing_outside_keras_internals_touches_private_keras_or_tensorflow():
    names = {item.name for item in PRIVATE_ATTRIBUTES if item.name.startswith("_")}
    patterns = PRIVATE_PATTERNS + [rf"(?<!\w){re.escape(name)}(?!\w)" for name in names]
    found = []
    trees = [ZOO, *(ZOO.parent / name for name in ("tests", "benchmarks", "examples"))]
    for path in sorted(path for tree in trees for path in tree.rglob("*.py")):
        if path.name in ("keras_internals.py", "test_keras_internals.py"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path}:{number}: {line.strip()}" for p in patterns if re.search(p, line)]
    assert found == []


def test_the_multi_worker_fixes_are_in_place_only_inside_the_block():
    before = originals()
    assert "_get_metrics_result_or_logs" not in vars(TRAINER)  # inherited from Trainer
    with distributed_fit_fixes("multi_worker"):
        inside = originals()
        assert all(now is not then for now, then in zip(inside, before, strict=True))
    assert originals() == before
    assert "_get_metrics_result_or_logs" not in vars(TRAINER)  # inherited again


def test_the_fixes_are_removed_when_the_fit_fails():
    before = originals()
    with pytest.raises(RuntimeError, match="lost a worker"):
        with distributed_fit_fixes("multi_worker"):
            raise RuntimeError("lost a worker")
    assert originals() == before


def test_mirrored_replaces_the_build_only():
    before = dict(zip(TRAINER_FUNCTIONS, originals(), strict=True))
    with distributed_fit_fixes("mirrored"):
        now = dict(zip(TRAINER_FUNCTIONS, originals(), strict=True))
    assert now[TRAINER, "_maybe_symbolic_build"] is not before[TRAINER, "_maybe_symbolic_build"]
    for kept in [(tf_trainer, "reduce_per_replica"), (TRAINER, "_get_metrics_result_or_logs")]:
        assert now[kept] is before[kept]


def test_without_a_strategy_nothing_is_replaced():
    before = originals()
    with Distribution().fitting():
        assert originals() == before


@pytest.mark.slow
def test_a_training_without_a_strategy_fits_with_keras_own_trainer(
    small_recipe, tmp_path, monkeypatch
):
    """A plain ``zoo run`` never installs the fixes: at its ``fit``, Keras' trainer
    functions are Keras' own."""
    from zoo.pipeline import run_recipe

    keras_own = originals()
    seen = []
    fit = keras.Model.fit

    def spying_fit(self, *args, **kwargs):
        seen.append(originals())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spying_fit)
    recipe = str(small_recipe(epochs=1))
    run_recipe(recipe, ["export.formats=[]"], out=str(tmp_path / "run"), seed=1)
    assert seen == [keras_own]


def counted_dataset(starts: list):
    """Four batches; each iteration started is appended to ``starts``."""

    def batches():
        starts.append(1)
        for index in range(4):
            yield np.full((2, 3), index, "float32"), np.zeros((2, 1), "float32")

    signature = (tf.TensorSpec((2, 3)), tf.TensorSpec((2, 1)))
    return tf.data.Dataset.from_generator(batches, output_signature=signature)


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_under_a_strategy_the_fixed_build_reads_no_iteration_of_its_own():
    """Why ``mirrored`` needs the build fix: Keras builds from a batch of an iteration of
    its own, which moves the samplers' epoch keys; the fix builds from zeros."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    iterations = {}
    for build, kind in (("keras", "none"), ("fixed", "mirrored")):
        starts = []
        with strategy.scope():
            model = keras.Sequential([keras.layers.Dense(1)])
            model.compile(optimizer="sgd", loss="mse")
        with distributed_fit_fixes(kind):
            history = model.fit(counted_dataset(starts), epochs=1, shuffle=False, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        iterations[build] = len(starts)
    assert iterations == {"keras": 2, "fixed": 1}, (
        "Keras' own build no longer starts an iteration of its own: the build fix of "
        "keras_internals.distributed_fit_fixes may be unneeded"
    )


def test_track_loss_feeds_the_loss_that_keras_logs():
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    track_loss(model, tf.constant(3.0), batch_size=2)
    track_loss(model, tf.constant(1.0), batch_size=6)
    assert float(model.get_metrics_result()["loss"]) == pytest.approx((3 * 2 + 1 * 6) / 8)
