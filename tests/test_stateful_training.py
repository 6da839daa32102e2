"""Sequential partitioning carries the state from batch to batch (detached), and each
epoch starts again from zeros; the random sampler's windows start from zeros."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo.metrics import Perplexity
from zoo.models import LanguageModel
from zoo.pipeline import run_recipe
from zoo.training.callbacks import ResetCarriedStates

VOCAB, BATCH, STEPS = 10, 4, 5


@pytest.fixture
def frozen_model():
    """An LSTM language model that does not learn (SGD at rate 0), so the states it
    carries can be recomputed from the same weights."""
    model = LanguageModel(VOCAB, [{"name": "lstm", "units": 6}], embedding_dim=3)
    model(np.zeros((1, STEPS), "int32"))
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity()],
    )
    model.carry_states(BATCH)
    return model


def two_batches():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, (2, BATCH, STEPS + 1)).astype("int32")
    inputs, targets = tokens[..., :-1], tokens[..., 1:]
    return inputs, tf.data.Dataset.from_tensor_slices((inputs, targets))


def final_states(model, inputs, states):
    _, states = model.forward(ops.convert_to_tensor(inputs), states)
    return states


def test_each_batch_starts_from_the_last_ones_final_state(frozen_model):
    inputs, dataset = two_batches()
    frozen_model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    expected = final_states(frozen_model, inputs[1], final_states(frozen_model, inputs[0], None))
    for carried, state in zip(frozen_model.carried_states(), expected, strict=True):
        np.testing.assert_allclose(carried, state, atol=1e-6)


def test_each_epoch_starts_from_zeros(frozen_model):
    inputs, dataset = two_batches()
    frozen_model.fit(dataset, epochs=2, shuffle=False, verbose=0, callbacks=[ResetCarriedStates()])
    once = final_states(frozen_model, inputs[1], final_states(frozen_model, inputs[0], None))
    for carried, state in zip(frozen_model.carried_states(), once, strict=True):
        np.testing.assert_allclose(carried, state, atol=1e-6)


def test_the_carried_states_are_not_weights(frozen_model, tmp_path):
    assert all(v.shape[0] != BATCH or v.trainable for v in frozen_model.weights)
    frozen_model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.carried_states() is None
    assert len(loaded.weights) == len(frozen_model.weights)


@pytest.mark.slow
def test_a_sequential_recipe_trains_with_carried_states(small_recipe, tmp_path):
    recipe = small_recipe("sequential-lm", layer="lstm", export={"formats": []})
    metrics = run_recipe(
        str(recipe), overrides=["data.sampler=sequential"], out=str(tmp_path / "run")
    )
    history = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert math.isfinite(metrics["perplexity"]) and metrics["perplexity"] < 28
    assert history["epochs_done"] == 2
