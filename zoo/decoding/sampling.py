"""Continuing a prefix with a language model, one token at a time."""

from __future__ import annotations

import numpy as np


def generate_tokens(
    model, prefix_ids, num_tokens, temperature=1.0, greedy=False, seed=None, progress=None
):
    """Warms the state up on ``prefix_ids``, then draws ``num_tokens`` tokens.

    Greedy picks argmax_x P(x | ...); otherwise each token is sampled from
    softmax(logits / temperature). ``progress(done, total)``, when given, is called after
    each token. Returns the generated ids (prefix excluded).
    """
    if not prefix_ids:
        raise ValueError("the prefix is empty after tokenization")
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rng = np.random.default_rng(seed)
    logits, states = model.forward(np.asarray([prefix_ids], dtype="int32"))
    generated = []
    for _ in range(num_tokens):
        last = np.asarray(logits[0, -1], dtype="float64")
        if greedy:
            token = int(np.argmax(last))
        else:
            scaled = last / temperature
            probabilities = np.exp(scaled - scaled.max())
            token = int(rng.choice(len(last), p=probabilities / probabilities.sum()))
        generated.append(token)
        if progress is not None:
            progress(len(generated), num_tokens)
        logits, states = model.forward(np.asarray([[token]], dtype="int32"), states)
    return generated
