"""The two backend contracts the decoding engine drives, declared once. Keras
(``zoo.decoding.keras_backend``), SavedModel (``zoo.export.saved_model``) and LiteRT
(``zoo.export.litert``) each implement them, and ``tests/test_decoding_backends.py``
checks that every one does; a plugin's runtime implements the same to reuse the engine.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class LanguageModelBackend(Protocol):
    """One token at a time, for ``zoo.decoding.generate_tokens`` and ``TextGenerator``."""

    def initial_states(self, batch_size: int) -> list:
        """The zero states of ``batch_size`` rows, one array per state."""

    def step(self, tokens, states: list) -> tuple[Any, list]:
        """``tokens`` [batch] int32 and the states → (logits [batch, vocab], the next
        states)."""


@runtime_checkable
class TranslatorBackend(Protocol):
    """Encode once, then one target token a step for every sentence and beam at once,
    for ``zoo.decoding.beam_search`` / ``greedy_search`` through ``SentenceTranslator``."""

    # how many sentences ``encode`` takes at once
    preferred_batch: ClassVar[int]

    def encode(self, ids, valid_len) -> dict:
        """``ids`` [b, num_steps] int32 (words, ``<eos>``, ``<pad>``) and ``valid_len``
        [b] → the decoder's state: a dict of arrays with ``b`` rows."""

    def decode_step(self, tokens, state: dict) -> tuple[Any, dict]:
        """``tokens`` [n] int32 and a state of ``n`` rows → (log-probabilities
        [n, vocab], the next state)."""
