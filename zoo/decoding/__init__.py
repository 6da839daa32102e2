"""Decoding at test time, over any backend: sampling from language models, greedy and
beam search for translators. Imports no TensorFlow (the Keras backends are in
``zoo.decoding.keras_backend``)."""

from zoo.decoding.beam_search import BeamSearchResult, beam_search, greedy_search
from zoo.decoding.sampling import generate_tokens
from zoo.decoding.text import SentenceTranslator, TextGenerator, TranslationInputError

__all__ = [
    "BeamSearchResult",
    "SentenceTranslator",
    "TextGenerator",
    "TranslationInputError",
    "beam_search",
    "generate_tokens",
    "greedy_search",
]
