"""The LSTM's written-out training loop against the cell's own step run by
``scan_over_time`` under autodiff: values and every gradient, with recurrent dropout
masks and padding masks (the sequence-layer tests compare it with Keras as well)."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.layers.fused_lstm import fused_lstm_sequence
from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.recurrent import scan_over_time

BATCH, STEPS, UNITS = 3, 7, 4


def normal(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def cell_with_kernel():
    cell = LSTMCell(UNITS)
    cell.build((BATCH, 2))
    cell.recurrent_kernel.assign(normal(1, (UNITS, 4 * UNITS)))
    return cell


def run_both(recurrent_mask, mask):
    cell = cell_with_kernel()
    projected, h0, c0 = (
        normal(2, (BATCH, STEPS, 4 * UNITS)),
        normal(3, (BATCH, UNITS)),
        normal(4, (BATCH, UNITS)),
    )
    weights = [
        normal(5, (BATCH, STEPS, UNITS)),
        normal(6, (BATCH, UNITS)),
        normal(7, (BATCH, UNITS)),
    ]

    def loss_and_gradients(run):
        with tf.GradientTape() as tape:
            tape.watch([projected, h0, c0])
            sequence, (h, c) = run()
            outputs = [sequence, h, c]
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outputs, weights, strict=True))
        gradients = tape.gradient(loss, [projected, h0, c0, cell.recurrent_kernel])
        return [t.numpy() for t in outputs + gradients]

    fused = loss_and_gradients(
        lambda: fused_lstm_sequence(projected, h0, c0, cell.recurrent_kernel, recurrent_mask, mask)
    )
    reference = loss_and_gradients(
        lambda: scan_over_time(
            lambda x, states: cell.transition(x, states, recurrent_mask), projected, [h0, c0], mask
        )
    )
    return fused, reference


@pytest.mark.parametrize("dropped", [False, True], ids=["no-dropout", "recurrent-dropout"])
@pytest.mark.parametrize("padded", [False, True], ids=["unmasked", "padded"])
def test_fused_lstm_matches_autodiff_of_the_cell(dropped, padded):
    recurrent_mask = None
    if dropped:
        keep = np.random.default_rng(8).random((BATCH, UNITS)) > 0.4
        recurrent_mask = tf.constant(keep.astype("float32") / 0.6)
    mask = None
    if padded:  # a gap in the middle too: a kept step must pass its state on unchanged
        mask = tf.constant(
            [[True] * STEPS, [True, True, False, True, True, False, False], [True] + [False] * 6]
        )
    fused, reference = run_both(recurrent_mask, mask)
    names = ["outputs", "h_T", "c_T", "d projected", "d h_0", "d c_0", "d kernel"]
    for name, actual, expected in zip(names, fused, reference, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5, err_msg=name)


def test_gradients_flow_when_only_the_outputs_are_used():
    cell = cell_with_kernel()
    projected, h0, c0 = (
        normal(2, (BATCH, STEPS, 4 * UNITS)),
        tf.zeros((BATCH, UNITS)),
        tf.zeros((BATCH, UNITS)),
    )
    with tf.GradientTape() as tape:
        tape.watch(projected)
        sequence, _ = fused_lstm_sequence(projected, h0, c0, cell.recurrent_kernel)
        loss = tf.reduce_sum(sequence)
    d_projected, d_kernel = tape.gradient(loss, [projected, cell.recurrent_kernel])
    assert np.all(np.isfinite(d_projected)) and np.any(d_projected.numpy() != 0)
    assert np.any(d_kernel.numpy() != 0)


def test_other_activations_use_the_generic_loop():
    cell = LSTMCell(UNITS, activation="relu")
    cell.build((BATCH, 2))
    states = cell.get_initial_state(BATCH)
    assert cell.fused_sequence(normal(2, (BATCH, STEPS, 4 * UNITS)), states) is None
    default = cell_with_kernel()
    assert default.fused_sequence(normal(2, (BATCH, STEPS, 4 * UNITS)), states) is not None
