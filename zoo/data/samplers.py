"""The chapter's two samplers of language-model minibatches, and the fixed windows used
to evaluate a language model, as ``tf.data`` pipelines.

Every pipeline yields ``(X, Y)``, int32, where ``Y`` is ``X`` shifted by one token: the
model reads ``X[:, t]`` and predicts ``Y[:, t]``.

The training samplers yield ONE epoch per iteration. Each new iteration (each epoch of
``model.fit``) draws a new random offset (and order) from a key that
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`` gives it, so two runs
with the same seed (and the same TensorFlow global seed, if one is set) see identical
batches, while the epochs of one run differ from each other.

Example:
    >>> import numpy as np
    >>> dataset = sequential_partitioning(np.arange(35), batch_size=2, num_steps=5, seed=0)
    >>> [x.shape for x, y in dataset.as_numpy_iterator()]
    [(2, 5), (2, 5), (2, 5)]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError


def random_sampling(token_ids, batch_size: int, num_steps: int, seed: int) -> tf.data.Dataset:
    """Random sampling: after dropping a random number ``offset`` in ``[0, num_steps)`` of
    leading tokens, the corpus is cut into non-overlapping subsequences of ``num_steps``
    tokens, which are shuffled and grouped ``batch_size`` at a time. Adjacent batches
    are unrelated, so a model must not carry its hidden state across them.

    Args:
        token_ids: the corpus as ids, shape ``[num_tokens]``.
        batch_size: subsequences per batch.
        num_steps: tokens per subsequence.
        seed: the seed of the offsets and orders of all epochs.

    Returns:
        A dataset of ``(X, Y)``, int32 ``[batch_size, num_steps]``; incomplete batches are
        dropped.
    """
    tokens = _token_tensor(token_ids, batch_size, num_steps, sampler="random_sampling")
    num_tokens = int(tokens.shape[0])

    def epoch(key):
        offset_seed, shuffle_seed = tf.unstack(_epoch_seeds(seed, key))
        offset = tf.random.stateless_uniform(
            [], seed=offset_seed, minval=0, maxval=num_steps, dtype=tf.int32
        )
        num_subsequences = (num_tokens - offset - 1) // num_steps
        starts = offset + tf.range(num_subsequences) * num_steps
        starts = tf.random.experimental.stateless_shuffle(starts, seed=shuffle_seed)
        num_batches = num_subsequences // batch_size
        batch_starts = tf.reshape(starts[: num_batches * batch_size], [-1, batch_size])
        return tf.data.Dataset.from_tensor_slices(batch_starts).map(
            lambda starts_of_batch: _windows(tokens, starts_of_batch, num_steps)
        )

    return _epoch_keys(seed).flat_map(epoch).prefetch(tf.data.AUTOTUNE)


def sequential_partitioning(
    token_ids, batch_size: int, num_steps: int, seed: int
) -> tf.data.Dataset:
    """Sequential partitioning: after dropping a random number ``offset`` in
    ``[0, num_steps)`` of leading tokens, the corpus is laid out as ``batch_size`` rows of
    consecutive text, and batch ``b`` holds columns ``[b * num_steps, (b + 1) * num_steps)``.
    Row ``r`` of batch ``b + 1`` continues row ``r`` of batch ``b``, so a model may carry
    its hidden state from one batch to the next (detached from the gradient).

    Args:
        token_ids: the corpus as ids, shape ``[num_tokens]``.
        batch_size: rows per batch.
        num_steps: tokens per row of a batch.
        seed: the seed of the offsets of all epochs.

    Returns:
        A dataset of ``(X, Y)``, int32 ``[batch_size, num_steps]``.
    """
    tokens = _token_tensor(token_ids, batch_size, num_steps, sampler="sequential_partitioning")
    num_tokens = int(tokens.shape[0])

    def epoch(key):
        offset_seed = _epoch_seeds(seed, key)[0]
        offset = tf.random.stateless_uniform(
            [], seed=offset_seed, minval=0, maxval=num_steps, dtype=tf.int32
        )
        row_length = (num_tokens - offset - 1) // batch_size
        num_batches = row_length // num_steps
        used = batch_size * row_length

        def batches(shifted):  # [batch_size * row_length] -> [num_batches, batch_size, num_steps]
            rows = tf.reshape(shifted[:used], [batch_size, row_length])
            columns = tf.reshape(rows[:, : num_batches * num_steps], [batch_size, -1, num_steps])
            return tf.transpose(columns, [1, 0, 2])

        return tf.data.Dataset.from_tensor_slices(
            (batches(tokens[offset:]), batches(tokens[offset + 1 :]))
        )

    return _epoch_keys(seed).flat_map(epoch).prefetch(tf.data.AUTOTUNE)


def sequential_windows(token_ids, batch_size: int, num_steps: int) -> tf.data.Dataset:
    """The evaluation windows: non-overlapping windows of ``num_steps`` tokens from offset
    0 in order, batched without dropping anything, so every token after the first is
    predicted exactly once and a perplexity covers the whole split.

    The windows are batched ``batch_size`` at a time (the last batch may be smaller); if
    ``num_tokens - 1`` is not a multiple of ``num_steps``, one last batch ``[1, rest]``
    holds the remaining ``rest < num_steps`` targets. The element shape is therefore
    ``[None, None]``.

    Args:
        token_ids: the split as ids, shape ``[num_tokens]``, at least 2 tokens.
        batch_size: windows per batch.
        num_steps: tokens per window.

    Returns:
        A dataset of ``(X, Y)``, int32; deterministic, the same at every iteration.
    """
    token_ids = np.asarray(token_ids, dtype=np.int32)
    if token_ids.ndim != 1 or len(token_ids) < 2:
        raise DataError(f"evaluation needs at least 2 tokens, got shape {token_ids.shape}")
    num_targets = len(token_ids) - 1
    num_full = num_targets // num_steps
    full_end = num_full * num_steps
    inputs = token_ids[:full_end].reshape(num_full, num_steps)
    targets = token_ids[1 : full_end + 1].reshape(num_full, num_steps)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch_size)
    if full_end < num_targets:
        rest = tf.data.Dataset.from_tensors(
            (token_ids[None, full_end:num_targets], token_ids[None, full_end + 1 :])
        )
        dataset = dataset.concatenate(rest)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _token_tensor(token_ids, batch_size: int, num_steps: int, sampler: str) -> tf.Tensor:
    """The ids as an int32 constant, after checking that even the largest offset leaves
    at least one batch."""
    token_ids = np.asarray(token_ids, dtype=np.int32)
    if token_ids.ndim != 1:
        raise DataError(f"{sampler}: token ids must be 1-D, got shape {token_ids.shape}")
    if batch_size < 1 or num_steps < 1:
        raise DataError(
            f"{sampler}: batch_size={batch_size} and num_steps={num_steps} must be >= 1"
        )
    needed = batch_size * num_steps + num_steps
    if len(token_ids) < needed:
        raise DataError(
            f"{sampler}: {len(token_ids)} tokens are too few for batch_size={batch_size} "
            f"and num_steps={num_steps} (at least {needed} needed)"
        )
    return tf.constant(token_ids)


def _epoch_keys(seed: int) -> tf.data.Dataset:
    """One int64 key per iteration, new at every iteration, reproducible from ``seed``."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)


def _epoch_seeds(seed: int, key: tf.Tensor) -> tf.Tensor:
    """Two independent stateless-random seeds, shape ``[2, 2]``, for one epoch."""
    epoch_seed = tf.stack([tf.constant(seed, tf.int64), key])
    return tf.random.experimental.stateless_split(epoch_seed, num=2)


def _windows(tokens: tf.Tensor, starts: tf.Tensor, num_steps: int):
    """``(X, Y)`` of shape ``[len(starts), num_steps]`` for windows starting at ``starts``."""
    positions = starts[:, None] + tf.range(num_steps + 1)[None, :]  # (batch, num_steps + 1)
    window = tf.gather(tokens, positions)
    return window[:, :-1], window[:, 1:]
