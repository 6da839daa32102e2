"""Evaluation metrics: perplexity for language models, BLEU for translation."""

from zoo.metrics.bleu import bleu, corpus_bleu, ngram_precisions
from zoo.metrics.perplexity import Perplexity

__all__ = ["Perplexity", "bleu", "corpus_bleu", "ngram_precisions"]
