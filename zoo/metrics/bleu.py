"""BLEU: the chapter's sentence score, and sacrebleu's corpus score for reporting."""

from __future__ import annotations

import logging
import math
from collections import Counter

from sacrebleu.metrics import BLEU

# sacrebleu warns that tokenized text looks "not detokenized": the chapter's preprocessing
# (a space before punctuation) is the data's own form, scored as such on purpose.
logging.getLogger("sacrebleu").setLevel(logging.ERROR)


def ngram_precisions(pred_seq: str, label_seq: str, k: int) -> list[float]:
    """The clipped n-gram precisions p_1, ..., p_k of a prediction against its label.

    p_n = (n-grams of the prediction that also occur in the label, each label n-gram
    usable as often as it occurs there) / (n-grams of the prediction). Tokens are
    separated by whitespace. As in the chapter's code, orders longer than the
    prediction have no n-grams and are left out, so the list has min(k, len_pred)
    entries and an exact match scores 1 however short it is.

    Example:
        >>> ngram_precisions("A B B C D", "A B C D E F", 4)
        [0.8, 0.75, 0.3333333333333333, 0.0]
    """
    pred_tokens, label_tokens = pred_seq.split(), label_seq.split()
    precisions = []
    for order in range(1, min(k, len(pred_tokens)) + 1):
        pred_ngrams = _ngram_counts(pred_tokens, order)
        label_ngrams = _ngram_counts(label_tokens, order)
        matches = sum((pred_ngrams & label_ngrams).values())  # & keeps the minimum count
        precisions.append(matches / (len(pred_tokens) - order + 1))
    return precisions


def bleu(pred_seq: str, label_seq: str, k: int) -> float:
    """The chapter's BLEU of one prediction against one label, both space-separated:

        exp(min(0, 1 − len_label / len_pred)) · Π_{n=1}^{k} p_n^{1/2^n}

    p_n as in ``ngram_precisions``; the weight 1/2^n lets a matching longer n-gram
    count for more. The exponential penalises predictions shorter than the label.
    An empty prediction scores 0.

    Example:
        >>> bleu("va !", "va !", k=2)
        1.0
    """
    len_pred, len_label = len(pred_seq.split()), len(label_seq.split())
    if len_pred == 0:
        return 0.0
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for order, precision in enumerate(ngram_precisions(pred_seq, label_seq, k), start=1):
        score *= precision ** (0.5**order)
    return score


def corpus_bleu(
    hypotheses: list[str],
    references: list[str] | list[list[str]],
    lowercase: bool = True,
    tokenize: str = "13a",
) -> tuple[float, str]:
    """sacrebleu's corpus BLEU (0–100) and its signature, for reporting translations.

    Case-insensitive, with sacrebleu's default 13a tokenization, so ``references``
    are the original sentences, not the chapter's preprocessed ones. Each hypothesis
    has one reference (a string) or several (a list: every correct translation the
    data holds for its source sentence; n-grams are clipped by the most of any one
    reference, and the brevity penalty takes the closest reference length). The
    signature (``nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:...``, ``nrefs:var``
    for varying counts) says how the score was computed, so that scores are only
    compared when their signatures agree.

    A translator that keeps case (``data.preprocess: none``) is scored with
    ``lowercase=False``; one that splits every punctuation mark off words (``lower`` and
    ``none``) with ``tokenize="intl"``, sacrebleu's tokenizer that also splits Unicode
    punctuation (``¿ « …``), so that spacing around marks counts for nothing.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; "
            "BLEU needs one reference (or a list of them) per hypothesis"
        )
    per_hypothesis = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    if any(not refs for refs in per_hypothesis):
        raise ValueError("every hypothesis needs at least one reference")
    most = max((len(refs) for refs in per_hypothesis), default=1)
    # sacrebleu takes one stream per reference slot; None marks a missing reference.
    streams = [
        [refs[slot] if slot < len(refs) else None for refs in per_hypothesis]
        for slot in range(most)
    ]
    metric = BLEU(lowercase=lowercase, tokenize=tokenize)
    score = metric.corpus_score(list(hypotheses), streams).score
    return score, str(metric.get_signature())


def _ngram_counts(tokens: list[str], order: int) -> Counter:
    return Counter(tuple(tokens[i : i + order]) for i in range(len(tokens) - order + 1))
