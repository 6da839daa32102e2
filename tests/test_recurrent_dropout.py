"""Variational dropout of the recurrent layers (``dropout``, ``recurrent_dropout``) and
weight drop (``weight_dropout``), checked against NumPy loops of the chapter's equations
with a known mask."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo import registry
from zoo.layers import fused_loops
from zoo.layers.recurrent import Recurrent

BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference(name, weights, x, input_mask, h_mask):
    """The layer's equations step by step; h_{t-1} enters the products times h_mask."""
    kernel, recurrent, bias = (np.asarray(w, dtype=np.float64) for w in weights)
    x = x * input_mask[:, None, :]
    h = np.zeros((x.shape[0], UNITS))
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        projected = x[:, t] @ kernel + bias
        h_in = h * h_mask
        if name == "rnn":
            h = np.tanh(projected + h_in @ recurrent)
        elif name == "gru":
            x_z, x_r, x_h = np.split(projected, 3, axis=-1)
            w_z, w_r, w_h = np.split(recurrent, 3, axis=-1)
            z = sigmoid(x_z + h_in @ w_z)
            r = sigmoid(x_r + h_in @ w_r)
            candidate = np.tanh(x_h + (r * h_in) @ w_h)
            h = z * h + (1 - z) * candidate  # the carry keeps the undropped H_{t-1}
        else:
            gates = projected + h_in @ recurrent
            i, f, g, o = np.split(gates, 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def fixed_masks(monkeypatch, rng):
    """Replaces the random masks by known ones; returns {"input": ..., "recurrent": ...}."""
    masks = {}

    def known_mask(self, like, rate):
        width = ops.shape(like)[-1]
        kind = "recurrent" if width == UNITS and len(ops.shape(like)) == 2 else "input"
        keep = rng.random((BATCH, width)) >= rate
        masks[kind] = (keep / (1.0 - rate)).astype("float32")
        return ops.convert_to_tensor(masks[kind])

    monkeypatch.setattr(Recurrent, "_dropout_mask", known_mask)
    return masks


@pytest.mark.parametrize("fused", [False, True], ids=["generic", "fused"])
@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_dropout_masks_match_the_equations(name, fused, monkeypatch):
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", 0 if fused else 1 << 62)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    layer = registry.build_layer(
        {"name": name, "units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.4},
        return_sequences=True,
    )
    layer.build(x.shape)
    masks = fixed_masks(monkeypatch, rng)
    trained = ops.convert_to_numpy(layer(x, training=True))
    weights = [w.numpy() for w in layer.cell.weights]
    expected = reference(name, weights, x, masks["input"], masks["recurrent"])
    np.testing.assert_allclose(trained, expected, atol=1e-5)
    # Without training the layer is the plain one: no mask at all.
    plain = reference(name, weights, x, np.ones((BATCH, FEATURES)), np.ones((BATCH, UNITS)))
    np.testing.assert_allclose(layer(x, training=False), plain, atol=1e-5)
    np.testing.assert_allclose(layer(x), plain, atol=1e-5)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "gru", "recurrent_dropout": 0.5, "seed": 1},
        {"name": "lstm", "weight_dropout": 0.5, "seed": 2},
    ],
    ids=["recurrent_dropout", "weight_dropout"],
)
def test_a_mask_is_drawn_per_call_and_shared_by_the_steps(spec):
    """Two training calls draw new masks (that every step of a call shares one mask is
    what the reference tests check: a per-step mask would not match them)."""
    layer = registry.build_layer({**spec, "units": UNITS}, return_sequences=True)
    x = np.ones((BATCH, TIME, FEATURES), "float32")
    first, second = (ops.convert_to_numpy(layer(x, training=True)) for _ in range(2))
    assert not np.allclose(first, second)


@pytest.mark.parametrize("fused", [False, True], ids=["generic", "fused"])
@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_weight_dropout_masks_the_recurrent_kernel(name, fused, monkeypatch):
    """The outputs are the equations' with W_h ⊙ mask; no gradient reaches a dropped
    entry of W_h; without training the kernel is whole. Also through the written-out
    loops of large LSTM and GRU layers (``fused_loops``, forced on here)."""
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", 0 if fused else 1 << 62)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    layer = registry.build_layer(
        {"name": name, "units": UNITS, "weight_dropout": 0.5}, return_sequences=True
    )
    layer.build(x.shape)
    kernel_shape = tuple(layer.cell.recurrent_kernel.shape)
    weight_mask = (rng.random(kernel_shape) >= 0.5) / 0.5
    monkeypatch.setattr(
        Recurrent, "_weight_dropout_mask", lambda self: tf.constant(weight_mask, tf.float32)
    )
    kernel, recurrent, bias = (w.numpy() for w in layer.cell.weights)
    with tf.GradientTape() as tape:
        trained = layer(x, training=True)
        loss = tf.reduce_sum(trained * rng.normal(size=trained.shape).astype("float32"))
    gradient = tape.gradient(loss, layer.cell.recurrent_kernel).numpy()

    no_mask = np.ones((BATCH, FEATURES)), np.ones((BATCH, UNITS))
    expected = reference(name, [kernel, recurrent * weight_mask, bias], x, *no_mask)
    np.testing.assert_allclose(trained, expected, atol=1e-5)
    assert np.all(gradient[weight_mask == 0] == 0)
    assert np.all(gradient[weight_mask != 0] != 0)
    plain = reference(name, [kernel, recurrent, bias], x, *no_mask)
    np.testing.assert_allclose(layer(x, training=False), plain, atol=1e-5)


@pytest.mark.parametrize("rate", [-0.1, 1.0])
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout", "weight_dropout"])
def test_rates_outside_zero_one_are_refused(name, rate):
    with pytest.raises(ValueError, match=f"{name} must be in"):
        registry.build_layer({"name": "lstm", "units": 4, name: rate})


def test_dropout_settings_survive_the_config_and_deep_rnn_passes_them_on():
    layer = registry.build_layer(
        {
            "name": "lstm",
            "units": 4,
            "dropout": 0.1,
            "recurrent_dropout": 0.2,
            "weight_dropout": 0.3,
            "seed": 3,
        }
    )
    clone = type(layer).from_config(layer.get_config())
    assert (clone.dropout, clone.recurrent_dropout, clone.weight_dropout, clone.seed) == (
        0.1,
        0.2,
        0.3,
        3,
    )
    deep = registry.build_layer(
        {
            "name": "deep_rnn",
            "layer": "lstm",
            "units": 4,
            "layer_kwargs": {"recurrent_dropout": 0.25},
        }
    )
    assert [sub.recurrent_dropout for sub in deep.stack] == [0.25, 0.25]
