"""Decoding at test time: sampling from language models (beam search for translators)."""

from zoo.decoding.sampling import generate_tokens

__all__ = ["generate_tokens"]
