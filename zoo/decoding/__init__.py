"""Decoding at test time: sampling from language models, greedy and beam search for translators."""

from zoo.decoding.beam_search import BeamSearchResult, beam_search, greedy_search
from zoo.decoding.sampling import generate_tokens

__all__ = ["generate_tokens", "BeamSearchResult", "beam_search", "greedy_search"]
