"""``fra_eng_words``: the English side of fra-eng as a word-level language-model corpus in
the form of the Penn Treebank's (Mikolov's preparation): lower case, words and punctuation
split, one sentence a line, the vocabulary capped at ``VOCAB_SIZE`` types counting
``<eos>`` with every rarer word written ``<unk>``.

It is what the word-level recipes are measured and tuned on, so that they are checked
elsewhere (a user's corpus of the same form) on text they were not tuned on.

>>> text = fra_eng_words_text()  # doctest: +SKIP
>>> text.splitlines()[0]  # doctest: +SKIP
'he hoped to succeed .'
"""

from __future__ import annotations

import functools
from collections import Counter

from zoo.registry import datasets

FRA_ENG_WORDS = "fra_eng_words"
# The Penn Treebank's size: 9,998 words, <unk> and <eos>
VOCAB_SIZE = 10_000
UNKNOWN = "<unk>"


@functools.lru_cache(maxsize=1)
def fra_eng_words_text() -> str:
    """The corpus as one text, a sentence a line, each line ending with a line end.

    The sentences are fra-eng's distinct English sentences in the fixed order of
    ``zoo.data.language_modeling.load_pretraining_text`` (116,827 lines, 1,057,121 tokens
    counting one ``<eos>`` a line); the language-model splits cut it 90 / 5 / 5 % at
    line ends, so that no sentence is in two splits. Words are split by nltk's
    ``WordPunctTokenizer``; the ``VOCAB_SIZE - 2`` most frequent (ties by spelling) are
    kept, across the whole text as the Penn Treebank's preparation did.
    """
    from zoo.data.language_modeling import FRA_ENG_ENGLISH, load_pretraining_text
    from zoo.text.formats import LanguageModelText

    text = LanguageModelText("lower", "word", tokenizer="nltk", line_ends="eos")
    # each line's words, without the <eos> that splitting a line appends
    lines = [
        text.split(line)[:-1] for line in load_pretraining_text(FRA_ENG_ENGLISH, text).splitlines()
    ]
    counts = Counter(word for words in lines for word in words)
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    kept = set(ranked[: VOCAB_SIZE - 2])
    return "".join(
        " ".join(word if word in kept else UNKNOWN for word in words) + "\n" for words in lines
    )


datasets.add(FRA_ENG_WORDS, fra_eng_words_text)
