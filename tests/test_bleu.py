"""The chapter's BLEU on its worked examples, and corpus BLEU against nltk."""

import math

import pytest
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

from zoo.metrics import bleu, corpus_bleu, ngram_precisions

LABEL, PREDICTION = "A B C D E F", "A B B C D"


def test_ngram_precisions_of_the_worked_example():
    assert ngram_precisions(PREDICTION, LABEL, 4) == pytest.approx([4 / 5, 3 / 4, 1 / 3, 0.0])


def test_label_ngrams_are_used_only_as_often_as_they_occur():
    # "the" occurs twice in the label: three of the prediction's "the" cannot all match.
    assert ngram_precisions("the the the", "the cat the", 1) == pytest.approx([2 / 3])


def test_bleu_is_the_penalised_product_of_weighted_precisions():
    brevity = math.exp(1 - 6 / 5)
    expected = brevity * (4 / 5) ** (1 / 2) * (3 / 4) ** (1 / 4) * (1 / 3) ** (1 / 8)
    assert bleu(PREDICTION, LABEL, 3) == pytest.approx(expected)
    assert bleu(PREDICTION, LABEL, 4) == 0.0  # p_4 = 0


@pytest.mark.parametrize(
    "sentence", ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]
)
def test_an_exact_match_scores_one(sentence):
    assert bleu(sentence, sentence, 2) == 1.0


def test_a_prediction_shorter_than_its_label_is_penalised():
    # Every n-gram of the prediction matches, so only the brevity term lowers the score.
    assert ngram_precisions("je suis", "je suis chez moi .", 2) == [1.0, 1.0]
    assert bleu("je suis", "je suis chez moi .", 2) == pytest.approx(math.exp(1 - 5 / 2))
    # A longer prediction is not rewarded for its length: only its precision counts.
    assert bleu("je suis chez moi . .", "je suis chez moi .", 1) == pytest.approx((5 / 6) ** 0.5)


def test_edge_cases_do_not_crash():
    assert bleu("", "va !", 2) == 0.0
    assert bleu("va !", "", 2) == 0.0
    # Orders longer than the prediction have no n-grams and are left out, as in d2l.
    assert ngram_precisions("va", "va !", 4) == [1.0]
    assert bleu("va", "va", 4) == 1.0
    assert bleu("va", "va !", 2) == pytest.approx(math.exp(1 - 2 / 1))


HYPOTHESES = [
    "the cat sat on the mat today",
    "a dog ran in the big green park",
    "we like to read old books at night",
    "it is cold and wet outside this morning",
]
REFERENCES = [
    "the cat sat on the red mat today",
    "a dog ran in the green park",
    "we like to read old books every night",
    "it is cold and very wet outside this morning",
]


def test_corpus_bleu_agrees_with_nltk_where_tokenization_is_trivial():
    # Lowercase words and no punctuation: 13a tokenization is a split on spaces, and every
    # n-gram order has matches, so neither library smooths anything.
    score, _ = corpus_bleu(HYPOTHESES, REFERENCES)
    expected = nltk_corpus_bleu(
        [[reference.split()] for reference in REFERENCES],
        [hypothesis.split() for hypothesis in HYPOTHESES],
    )
    assert 0.3 < expected < 0.9
    assert score / 100 == pytest.approx(expected, abs=1e-2)


def test_corpus_bleu_ignores_case_and_tokenizes_punctuation():
    score, signature = corpus_bleu(["Il est calme."], ["il est calme ."])
    assert score == pytest.approx(100.0)
    assert signature.startswith("nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:")


def test_corpus_bleu_needs_one_reference_per_hypothesis():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a b", "c d"], ["a b"])


def test_multi_reference_corpus_bleu_agrees_with_nltk():
    """Several references per hypothesis, varying in number: clipping by the most of
    any one reference and the closest reference length, as nltk computes them."""
    references = [
        [REFERENCES[0], "the cat sat on the red mat"],
        [REFERENCES[1]],
        [REFERENCES[2], "we like to read old books at night", "we read at night"],
        [REFERENCES[3]],
    ]
    score, signature = corpus_bleu(HYPOTHESES, references)
    expected = nltk_corpus_bleu(
        [[reference.split() for reference in refs] for refs in references],
        [hypothesis.split() for hypothesis in HYPOTHESES],
    )
    single, _ = corpus_bleu(HYPOTHESES, REFERENCES)
    assert score / 100 == pytest.approx(expected, abs=1e-2)
    assert score > single  # a hypothesis equal to one of its references now counts fully
    assert signature.startswith("nrefs:var|")


def test_every_hypothesis_needs_a_reference():
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu(["a b"], [[]])
