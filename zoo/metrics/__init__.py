"""Evaluation metrics: perplexity for language models (and BLEU for translation)."""

from zoo.metrics.perplexity import Perplexity

__all__ = ["Perplexity"]
