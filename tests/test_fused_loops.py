"""The LSTM's and GRU's written-out training loops against the cell's own step run by
``scan_over_time`` under autodiff: values and every gradient, with recurrent dropout
masks and padding masks (the sequence-layer tests compare them with Keras as well)."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import fused_loops
from zoo.layers.fused_loops import GRULoop, LSTMLoop, fused_sequence
from zoo.layers.gru_cell import GRUCell
from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.recurrent import scan_over_time

BATCH, STEPS, UNITS = 3, 7, 4
CELLS = {"lstm": (LSTMCell, LSTMLoop), "gru": (GRUCell, GRULoop)}


def normal(seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def cell_with_kernel(kind):
    cell = CELLS[kind][0](UNITS)
    cell.build((BATCH, 2))
    cell.recurrent_kernel.assign(normal(1, tuple(cell.recurrent_kernel.shape)))
    return cell


def run_both(kind, recurrent_mask, mask):
    cell = cell_with_kernel(kind)
    projected = normal(2, (BATCH, STEPS, cell.num_gates * UNITS))
    initial = [normal(3 + index, (BATCH, UNITS)) for index in range(len(cell.state_size))]
    weights = [normal(10 + index, (BATCH, UNITS)) for index in range(len(initial))]
    sequence_weights = normal(9, (BATCH, STEPS, UNITS))

    def outputs_and_gradients(run):
        with tf.GradientTape() as tape:
            tape.watch([projected, *initial])
            sequence, final = run()
            loss = tf.reduce_sum(sequence * sequence_weights) + sum(
                tf.reduce_sum(state * weight) for state, weight in zip(final, weights, strict=True)
            )
        gradients = tape.gradient(loss, [projected, *initial, cell.recurrent_kernel])
        return [t.numpy() for t in [sequence, *final, *gradients]]

    fused = outputs_and_gradients(
        lambda: fused_sequence(
            CELLS[kind][1], projected, initial, cell.recurrent_kernel, recurrent_mask, mask
        )
    )
    reference = outputs_and_gradients(
        lambda: scan_over_time(
            lambda x, states: cell.transition(x, states, recurrent_mask), projected, initial, mask
        )
    )
    return fused, reference


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("dropped", [False, True], ids=["no-dropout", "recurrent-dropout"])
@pytest.mark.parametrize("padded", [False, True], ids=["unmasked", "padded"])
def test_fused_loop_matches_autodiff_of_the_cell(kind, dropped, padded):
    recurrent_mask = None
    if dropped:
        keep = np.random.default_rng(8).random((BATCH, UNITS)) > 0.4
        recurrent_mask = tf.constant(keep.astype("float32") / 0.6)
    mask = None
    if padded:  # a gap in the middle too: a kept step must pass its state on unchanged
        mask = tf.constant(
            [[True] * STEPS, [True, True, False, True, True, False, False], [True] + [False] * 6]
        )
    fused, reference = run_both(kind, recurrent_mask, mask)
    assert len(fused) == len(reference)
    for index, (actual, expected) in enumerate(zip(fused, reference, strict=True)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5, err_msg=f"item {index}")


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_gradients_flow_when_only_the_outputs_are_used(kind):
    cell = cell_with_kernel(kind)
    projected = normal(2, (BATCH, STEPS, cell.num_gates * UNITS))
    with tf.GradientTape() as tape:
        tape.watch(projected)
        sequence, _ = fused_sequence(
            CELLS[kind][1], projected, cell.get_initial_state(BATCH), cell.recurrent_kernel
        )
        loss = tf.reduce_sum(sequence)
    d_projected, d_kernel = tape.gradient(loss, [projected, cell.recurrent_kernel])
    assert np.all(np.isfinite(d_projected)) and np.any(d_projected.numpy() != 0)
    assert np.any(d_kernel.numpy() != 0)


class PeepholeLikeCell(LSTMCell):
    """A plugin's LSTM variant: its own transition, so the LSTM's loop is not its loop."""

    def transition(self, projected, states, recurrent_mask=None, products=None):
        h, (h, c) = super().transition(projected, states, recurrent_mask, products)
        return h, [h, 0.5 * c]


@pytest.mark.parametrize(
    "cell",
    [
        PeepholeLikeCell(UNITS),
        LSTMCell(UNITS, activation="relu"),
        LSTMCell(UNITS, recurrent_activation="hard_sigmoid"),
        GRUCell(UNITS, reset_after=True),
        GRUCell(UNITS, activation="relu"),
    ],
    ids=["lstm-subclass", "lstm-relu", "lstm-hard-sigmoid", "gru-reset-after", "gru-relu"],
)
def test_other_cells_use_the_generic_loop(cell, monkeypatch):
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", 0)
    cell.build((BATCH, 2))
    projected = normal(2, (BATCH, STEPS, cell.num_gates * UNITS))
    assert cell.fused_sequence(projected, cell.get_initial_state(BATCH)) is None


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_default_cells_fuse_from_the_kernel_size_where_it_pays(kind, monkeypatch):
    cell = cell_with_kernel(kind)
    projected = normal(2, (BATCH, STEPS, cell.num_gates * UNITS))
    entries = UNITS * cell.num_gates * UNITS
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", entries + 1)
    assert cell.fused_sequence(projected, cell.get_initial_state(BATCH)) is None
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", entries)
    assert cell.fused_sequence(projected, cell.get_initial_state(BATCH)) is not None
