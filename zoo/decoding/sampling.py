"""Continuing a prefix with a language model, one token at a time."""

from __future__ import annotations

import math

import numpy as np


def generate_tokens(
    backend, prefix_ids, num_tokens, temperature=1.0, greedy=False, seed=None, progress=None
):
    """Reads ``prefix_ids`` token by token, then draws ``num_tokens`` tokens.

    ``backend`` is any language model offering ``initial_states(batch_size)`` and
    ``step(tokens [batch] int32, states) → (logits [batch, vocab], states)``: the Keras
    model (``zoo.decoding.keras_backend``), a SavedModel or a TFLite file
    (``zoo.export``). Greedy picks argmax_x P(x | ...); otherwise each token is sampled
    from softmax(logits / temperature). ``progress(done)`` is called after each token.
    Returns the generated ids (prefix excluded).
    """
    if not len(prefix_ids):
        raise ValueError("the prefix is empty after tokenization")
    if not greedy and not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    rng = np.random.default_rng(seed)
    states = backend.initial_states(1)
    for token in prefix_ids:
        logits, states = backend.step(np.asarray([token], np.int32), states)
    generated = []
    for index in range(num_tokens):
        last = np.asarray(logits[0], dtype="float64")
        if greedy:
            token = int(np.argmax(last))
        else:
            scaled = last / temperature
            probabilities = np.exp(scaled - scaled.max())
            token = int(rng.choice(len(last), p=probabilities / probabilities.sum()))
        generated.append(token)
        if index + 1 < num_tokens:
            logits, states = backend.step(np.asarray([token], np.int32), states)
        if progress is not None:
            progress(index + 1)
    return generated
