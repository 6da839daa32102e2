"""Beam search and greedy search over any step function, batched over sentences and beams.

The step function may return NumPy arrays (a TFLite or SavedModel backend) or
TensorFlow tensors (the Keras model): with tensors, the masking and the per-row top-k
stay in TensorFlow, so the full (rows, vocab) array never reaches NumPy; with arrays,
nothing here imports TensorFlow. Both pick the same hypotheses from the same scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# step_fn(tokens [n] int32, state) -> (log_probs [n, vocab], new_state); every array or
# tensor in the nested state has n rows.
StepFn = Callable[[np.ndarray, Any], tuple[Any, Any]]


@dataclass(frozen=True)
class BeamSearchResult:
    """The hypothesis chosen for each sentence.

    tokens: [batch, max_length] int32, y_1, ..., y_L, then eos_id up to max_length.
    lengths: [batch] int64, L: the number of generated tokens, <eos> included. A
        hypothesis still without <eos> at max_length has L = max_length.
    log_probs: [batch] float64, log P(y_1, ..., y_L | c).
    scores: [batch] float64, what chose the hypothesis: (1 / L^α) log P(y_1, ..., y_L | c)
        for beam search; log P for greedy search, which compares no hypotheses.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    log_probs: np.ndarray
    scores: np.ndarray


def beam_search(
    step_fn: StepFn,
    initial_state: Any,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    max_length: int,
    beam_width: int = 4,
    length_penalty_alpha: float = 0.75,
) -> BeamSearchResult:
    """The chapter's beam search, for every sentence of a batch at once.

    Each step extends every hypothesis in the beam by every token and keeps, per
    sentence, the ``beam_width`` extensions of highest log P(y_1, ..., y_t | c). A
    hypothesis finishes when it emits <eos>; it then stays in the beam, frozen (it
    extends only with <eos>, at no cost, and keeps competing for a slot by its log P),
    and the best finished hypothesis of each sentence is also kept aside, so one that
    later loses its slot is not lost. The answer for each sentence is the hypothesis of
    highest

        (1 / L^α) log P(y_1, ..., y_L | c)

    among every finished one and those still alive at ``max_length``, where L counts
    the generated tokens, <eos> included. α > 0 offsets log P's preference for short
    hypotheses; α = 0 ranks by log P alone. The search stops early once every beam
    has finished, and ``beam_width=1`` is ``greedy_search``.

    ``step_fn`` is called with n = batch_size * beam_width rows: row b * beam_width + j
    is beam j of sentence b. ``initial_state`` has batch_size rows and is repeated
    beam_width times; after each step every array or tensor of the state is reordered
    to follow the hypotheses kept (NumPy indexing or ``tf.gather`` on its first axis).
    At the first step only beam 0 of each sentence is live, so the beams start from
    distinct tokens.

    Args:
        step_fn: (tokens [n] int32, state) → (log-probabilities [n, vocab], new state);
            the tokens are the last ones chosen, ``bos_id`` at the first step.
        initial_state: nested lists, tuples or dicts of arrays or tensors with
            batch_size rows, e.g. the encoder's final state and its outputs.
        batch_size: the number of sentences.
        bos_id, eos_id: the ids of <bos> and <eos>.
        max_length: the most tokens generated per sentence, <eos> included.
        beam_width: k, the hypotheses kept per sentence. Defaults to 4.
        length_penalty_alpha: α. Defaults to 0.75.

    Example:
        >>> result = beam_search(step_fn, encoder_state, batch_size=2, bos_id=1, eos_id=2,
        ...                      max_length=10, beam_width=4)
        >>> result.tokens[0, : result.lengths[0]]  # the first sentence's translation
    """
    if beam_width < 1 or max_length < 1:
        raise ValueError(f"beam_width and max_length must be ≥ 1, got {beam_width}, {max_length}")
    num_rows = batch_size * beam_width
    first_row = np.arange(batch_size) * beam_width  # (batch,) row of beam 0 of each sentence
    state = _gather_rows(initial_state, np.repeat(np.arange(batch_size), beam_width))
    tokens = np.full(num_rows, bos_id, np.int32)
    log_probs = np.where(np.arange(num_rows) % beam_width == 0, 0.0, -np.inf)
    finished = np.zeros(num_rows, bool)
    history = np.full((num_rows, max_length), eos_id, np.int32)
    best = _BestHypotheses(batch_size, max_length, eos_id)

    for step in range(max_length):
        step_log_probs, state = step_fn(tokens, state)  # (rows, vocab)
        extensions = _only_eos_after_finishing(step_log_probs, finished, eos_id)
        beams, tokens, log_probs = best_extensions(log_probs, extensions, beam_width)
        parents = (first_row[:, None] + beams).reshape(-1)  # (rows,)
        tokens = tokens.reshape(-1).astype(np.int32)
        log_probs = log_probs.reshape(-1)
        was_finished = finished[parents]
        finished = was_finished | (tokens == eos_id)
        history = history[parents]
        history[:, step] = tokens
        state = _gather_rows(state, parents)
        # Fewer finite candidates than beams (a small vocabulary) leave dead rows at -inf.
        newly_finished = finished & ~was_finished & np.isfinite(log_probs)
        best.offer(newly_finished, history, step + 1, log_probs, length_penalty_alpha)
        if not np.any(~finished & np.isfinite(log_probs)):
            break

    alive = ~finished & np.isfinite(log_probs)  # none if every beam finished early
    best.offer(alive, history, max_length, log_probs, length_penalty_alpha)
    return best.result()


def best_extensions(log_probs: np.ndarray, extensions: np.ndarray, beam_width: int):
    """The ``beam_width`` best extensions of each sentence's beams, best first.

    The best k of all beam × vocab extensions are among the best k of each beam, so a
    top-k over each row's vocabulary (``tf.math.top_k``) cuts the candidates to beam × k
    before the final choice. Ties go to the lower (beam, token), as argmax does.

    Shapes: log_probs [rows], extensions [rows, vocab] (an array or a tensor) → (parent
    beam [batch, k],
    token [batch, k], log P [batch, k]).
    """
    rows, vocab_size = extensions.shape
    k = min(beam_width, vocab_size)
    values, tokens = _top_k(extensions, k)  # sorted; ties to the lower index
    scores = (log_probs[:, None] + values).reshape(-1, beam_width * k)
    tokens = tokens.reshape(-1, beam_width * k)
    beams = np.repeat(np.arange(beam_width), k)[None, :]  # (1, beam * k), already in order
    chosen = np.argsort(-scores, axis=1, kind="stable")[:, :beam_width]
    return (
        np.broadcast_to(beams, scores.shape)[np.arange(len(scores))[:, None], chosen],
        np.take_along_axis(tokens, chosen, axis=1),
        np.take_along_axis(scores, chosen, axis=1),
    )


def greedy_search(
    step_fn: StepFn,
    initial_state: Any,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    max_length: int,
) -> BeamSearchResult:
    """The chapter's greedy search: y_t = argmax_y P(y | y_1, ..., y_{t-1}, c) until <eos>.

    Arguments as in ``beam_search``; ``step_fn`` sees batch_size rows and the state is
    passed on as it is. A sentence that has emitted <eos> is fed <eos> afterwards and
    its output is padded with it.
    """
    tokens = np.full(batch_size, bos_id, np.int32)
    state = initial_state
    output = np.full((batch_size, max_length), eos_id, np.int32)
    lengths = np.full(batch_size, max_length, np.int64)
    log_probs = np.zeros(batch_size)
    finished = np.zeros(batch_size, bool)
    for step in range(max_length):
        step_log_probs, state = step_fn(tokens, state)
        step_log_probs = np.asarray(step_log_probs)  # (batch, vocab)
        best = np.argmax(step_log_probs, axis=-1)  # ties to the lower index
        tokens = np.where(finished, eos_id, best).astype(np.int32)
        chosen = step_log_probs[np.arange(batch_size), tokens]
        log_probs += np.where(finished, 0.0, chosen.astype(np.float64))
        output[:, step] = tokens
        lengths = np.where(~finished & (tokens == eos_id), step + 1, lengths)
        finished |= tokens == eos_id
        if finished.all():
            break
    return BeamSearchResult(output, lengths, log_probs, scores=log_probs.copy())


class _BestHypotheses:
    """The highest-scoring hypothesis offered so far for each sentence."""

    def __init__(self, batch_size, max_length, eos_id):
        self.tokens = np.full((batch_size, max_length), eos_id, np.int32)
        self.lengths = np.zeros(batch_size, np.int64)
        self.log_probs = np.full(batch_size, -np.inf)
        self.scores = np.full(batch_size, -np.inf)

    def offer(self, offered, history, length, log_probs, length_penalty_alpha):
        """Per sentence, keeps the best of the rows where ``offered`` (hypotheses of the
        same ``length``) if it beats the one kept so far."""
        batch_size = len(self.scores)
        scores = np.where(offered, log_probs / length**length_penalty_alpha, -np.inf)
        scores = scores.reshape(batch_size, -1)  # (batch, beam)
        beam = np.argmax(scores, axis=1)
        best_scores = scores[np.arange(batch_size), beam]
        better = best_scores > self.scores
        rows = (np.arange(batch_size) * scores.shape[1] + beam)[better]
        self.tokens[better] = history[rows]
        self.lengths[better] = length
        self.log_probs[better] = log_probs[rows]
        self.scores[better] = best_scores[better]

    def result(self):
        return BeamSearchResult(self.tokens, self.lengths, self.log_probs, self.scores)


def _is_tensor(value) -> bool:
    """A TensorFlow tensor (checked without importing TensorFlow)."""
    return type(value).__module__.startswith("tensorflow")


def _only_eos_after_finishing(step_log_probs, finished: np.ndarray, eos_id: int):
    """The extensions of each row: its log-probabilities, or, for a finished
    hypothesis, <eos> alone at no cost."""
    if _is_tensor(step_log_probs):
        import tensorflow as tf

        only_eos = tf.one_hot(
            eos_id,
            step_log_probs.shape[-1],
            on_value=0.0,
            off_value=-np.inf,
            dtype=step_log_probs.dtype,
        )
        return tf.where(finished[:, None], only_eos[None, :], step_log_probs)
    step_log_probs = np.asarray(step_log_probs)
    only_eos = np.full(step_log_probs.shape[-1], -np.inf, step_log_probs.dtype)
    only_eos[eos_id] = 0.0
    return np.where(finished[:, None], only_eos[None, :], step_log_probs)


def _top_k(extensions, k: int):
    """The k largest values of each row and their indices, largest first, ties to the
    lower index (``tf.math.top_k``'s order): (values float64, indices int)."""
    if _is_tensor(extensions):
        import tensorflow as tf

        top = tf.math.top_k(extensions, k=k)
        return top.values.numpy().astype(np.float64), top.indices.numpy()
    extensions = np.asarray(extensions)
    kth_largest = np.partition(extensions, -k, axis=1)[:, -k]  # O(vocab) per row
    indices = np.empty((len(extensions), k), np.int64)
    for row, (values, threshold) in enumerate(zip(extensions, kth_largest, strict=True)):
        candidates = np.flatnonzero(values >= threshold)  # every tie at the threshold too
        order = np.lexsort((candidates, -values[candidates]))  # by value, then index
        indices[row] = candidates[order[:k]]
    return np.take_along_axis(extensions, indices, axis=1).astype(np.float64), indices


def _gather_rows(state, rows):
    """Row rows[i] of every array or tensor in ``state`` becomes its row i. The state
    is an array or tensor, or a list, tuple or dict of them; a ``None`` leaf, such as
    absent attention keys, stays ``None``."""
    if state is None:
        return None
    if isinstance(state, dict):
        return {key: _gather_rows(value, rows) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_gather_rows(value, rows) for value in state)
    if isinstance(state, np.ndarray):
        return state[rows]
    import tensorflow as tf

    return tf.gather(state, rows)
