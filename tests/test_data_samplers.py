"""The samplers read a corpus whose token ids are their own positions (``np.arange``), so
every id in a batch tells where in the corpus it came from."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import DataError
from zoo.data.samplers import random_sampling, sequential_partitioning, sequential_windows

NUM_TOKENS = 1000
BATCH_SIZE = 4
NUM_STEPS = 7
CORPUS = np.arange(NUM_TOKENS)


def epochs(dataset, count):
    """``count`` iterations of a dataset, each a list of (X, Y) numpy batches."""
    return [list(dataset.as_numpy_iterator()) for _ in range(count)]


@pytest.mark.parametrize("sampler", [random_sampling, sequential_partitioning])
def test_batches_are_int32_and_y_is_x_shifted_by_one(sampler):
    dataset = sampler(CORPUS, batch_size=BATCH_SIZE, num_steps=NUM_STEPS, seed=0)
    spec = tf.TensorSpec([BATCH_SIZE, NUM_STEPS], tf.int32)
    assert dataset.element_spec == (spec, spec)
    for inputs, targets in dataset.as_numpy_iterator():
        assert np.array_equal(targets, inputs + 1)
        assert np.array_equal(inputs, inputs[:, :1] + np.arange(NUM_STEPS))  # contiguous text


def test_random_sampling_takes_non_overlapping_subsequences_after_one_random_offset():
    for batches in epochs(random_sampling(CORPUS, BATCH_SIZE, NUM_STEPS, seed=0), 5):
        starts = np.concatenate([inputs[:, 0] for inputs, _ in batches])
        offset = starts.min() % NUM_STEPS
        assert 0 <= offset < NUM_STEPS
        assert np.all(starts % NUM_STEPS == offset)
        assert len(set(starts.tolist())) == len(starts)  # each subsequence at most once
        num_subsequences = (NUM_TOKENS - offset - 1) // NUM_STEPS
        assert len(batches) == num_subsequences // BATCH_SIZE
        assert not np.array_equal(starts, np.sort(starts))  # shuffled


@pytest.mark.parametrize("sampler", [random_sampling, sequential_partitioning])
def test_each_iteration_is_a_new_epoch_and_the_same_seed_repeats_the_epochs(sampler):
    def inputs_per_epoch(seed):  # [num_batches, batch, num_steps] for each of 6 epochs
        dataset = sampler(CORPUS, BATCH_SIZE, NUM_STEPS, seed=seed)
        return [np.stack([inputs for inputs, _ in batches]) for batches in epochs(dataset, 6)]

    first_run, second_run, other_seed = (
        inputs_per_epoch(5),
        inputs_per_epoch(5),
        inputs_per_epoch(6),
    )
    assert all(np.array_equal(a, b) for a, b in zip(first_run, second_run, strict=True))
    assert not all(np.array_equal(first_run[0], epoch) for epoch in first_run[1:])
    assert not all(np.array_equal(a, b) for a, b in zip(first_run, other_seed, strict=True))
    offsets = {int(epoch.min() % NUM_STEPS) for epoch in first_run}
    assert len(offsets) > 1  # the offset is drawn anew each epoch


def test_sequential_partitioning_rows_continue_across_consecutive_batches():
    for batches in epochs(sequential_partitioning(CORPUS, BATCH_SIZE, NUM_STEPS, seed=1), 4):
        offset = int(batches[0][0][0, 0])
        assert 0 <= offset < NUM_STEPS
        row_length = (NUM_TOKENS - offset - 1) // BATCH_SIZE
        assert len(batches) == row_length // NUM_STEPS
        assert np.array_equal(batches[0][0][:, 0], offset + row_length * np.arange(BATCH_SIZE))
        for (previous, _), (current, _) in zip(batches, batches[1:], strict=False):
            # Row r of batch b + 1 continues row r of batch b.
            assert np.array_equal(current[:, 0], previous[:, -1] + 1)


def test_evaluation_windows_predict_every_token_once_from_offset_zero():
    num_tokens = 2 + 3 * NUM_STEPS * BATCH_SIZE + NUM_STEPS + 3  # partial batch and window
    corpus = np.arange(num_tokens)
    dataset = sequential_windows(corpus, batch_size=BATCH_SIZE, num_steps=NUM_STEPS)
    batches = list(dataset.as_numpy_iterator())
    inputs = np.concatenate([x.reshape(-1) for x, _ in batches])
    targets = np.concatenate([y.reshape(-1) for _, y in batches])
    assert np.array_equal(inputs, corpus[:-1])
    assert np.array_equal(targets, corpus[1:])
    assert [x.shape for x, _ in batches][-3:] == [(BATCH_SIZE, NUM_STEPS), (1, NUM_STEPS), (1, 4)]
    again = list(dataset.as_numpy_iterator())
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


def test_evaluation_windows_without_a_partial_window_have_num_steps_columns():
    corpus = np.arange(2 * NUM_STEPS + 1)
    shapes = [x.shape for x, _ in sequential_windows(corpus, 4, NUM_STEPS).as_numpy_iterator()]
    assert shapes == [(2, NUM_STEPS)]


@pytest.mark.parametrize("sampler", [random_sampling, sequential_partitioning])
def test_a_corpus_too_short_for_one_batch_is_a_one_line_error(sampler):
    with pytest.raises(DataError, match="too few"):
        sampler(np.arange(30), batch_size=4, num_steps=7, seed=0)
