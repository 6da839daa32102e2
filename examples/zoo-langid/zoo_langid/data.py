"""Labelled sentences for language identification: fra-eng's two sides, or a user's
``sentence<TAB>label`` files.

fra-eng's train / validation / test splits are cut by a hash of the English sentence,
so both sides of a pair, and every translation of one English sentence, fall in one
split; a user's single file is cut the same way, by a hash of the sentence. Within a
split each sentence is kept once, a sentence given with both labels is dropped (nothing
tells them apart), and a held-out sentence that is also a training sentence (a French
sentence that translates two English ones in two splits) is dropped from the held-out
split, so that evaluation never scores a sentence the model was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoo.errors import DataError
from zoo.text.vocab import PAD, UNK, Vocab
from zoo_langid.text import LABELS, char_ids

SPLITS = ("train", "validation", "test")
FRA_ENG = "fra_eng"
# fra-eng's columns of each label, as written (the cleaned ones are lower case)
FRA_ENG_COLUMNS = {"en": "en_raw", "fr": "fr_raw"}
SPLIT_SEED = 0  # of a single user file's hash split, fixed so a file always splits alike
BATCHES_AHEAD = 2


@dataclass
class LabelledSentences:
    """One split: ``sentences`` and their ``labels`` (indices into ``LABELS``, int32)."""

    sentences: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.sentences)

    def first(self, count: int | None) -> LabelledSentences:
        """The first ``count`` sentences (all of them for ``None``)."""
        return LabelledSentences(self.sentences[:count], self.labels[:count])

    def sample(self, count: int | None, seed: int) -> LabelledSentences:
        """``count`` sentences drawn without replacement (seeded), in their order; all
        of them for ``None`` or a count past the split's size."""
        if count is None or count >= len(self):
            return self
        chosen = np.sort(np.random.default_rng(seed).choice(len(self), count, replace=False))
        return LabelledSentences([self.sentences[i] for i in chosen], self.labels[chosen])


def fra_eng_sentences(split: str) -> list[tuple[str, str]]:
    """(sentence, label) of both sides of a fra-eng split, pairs in line order."""
    from zoo.data.tfds_columns import split_columns

    columns = split_columns(FRA_ENG, split)
    order = np.argsort(columns["id"], kind="stable")
    sides = {
        label: [text.decode("utf-8") for text in columns[column][order]]
        for label, column in FRA_ENG_COLUMNS.items()
    }
    return [
        (sentence, label)
        for pair in zip(*sides.values(), strict=True)
        for sentence, label in zip(pair, sides, strict=True)
    ]


def tsv_sentences(path) -> list[tuple[str, str]]:
    """(sentence, label) of a user's ``sentence<TAB>label`` file, each label one of
    ``LABELS`` (a line with another is one ``DataError`` naming it)."""
    from zoo.data.user_files import read_pairs_tsv

    pairs, _ = read_pairs_tsv(path)
    for pair in pairs:
        if pair.target not in LABELS:
            raise DataError(
                f"{path}: line {pair.line_number}: label {pair.target[:40]!r}; expected one "
                f"of {', '.join(LABELS)}"
            )
    return [(pair.source, pair.target) for pair in pairs]


def labelled_splits(source) -> dict[str, LabelledSentences]:
    """Split name → its sentences, each once, held-out ones never in train (see the
    module's docstring). ``source``: ``"fra_eng"``, a TSV file (split by a hash of the
    sentence) or ``{train, validation, test}`` TSV files."""
    from zoo.data.splits import check_source, hash_split

    check_source(source)
    if isinstance(source, dict):
        rows = {split: tsv_sentences(source[split]) for split in SPLITS}
    elif source == FRA_ENG:
        rows = {split: fra_eng_sentences(split) for split in SPLITS}
    else:
        rows = {split: [] for split in SPLITS}
        for sentence, label in tsv_sentences(source):
            rows[hash_split(sentence, SPLIT_SEED)].append((sentence, label))
    splits = {split: unambiguous(split_rows) for split, split_rows in rows.items()}
    trained = set(splits["train"])
    return {
        split: as_arrays(
            {s: label for s, label in sentences.items() if split == "train" or s not in trained}
        )
        for split, sentences in splits.items()
    }


def unambiguous(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Sentence → label, first occurrences in order, less the sentences given with more
    than one label."""
    labels: dict[str, set[str]] = {}
    for sentence, label in rows:
        labels.setdefault(sentence, set()).add(label)
    return {sentence: found.pop() for sentence, found in labels.items() if len(found) == 1}


def as_arrays(labelled: dict[str, str]) -> LabelledSentences:
    index = {label: number for number, label in enumerate(LABELS)}
    return LabelledSentences(
        list(labelled), np.array([index[label] for label in labelled.values()], np.int32)
    )


@dataclass
class LanguageData:
    """The recipe's batched splits and character vocabulary.

    ``train`` (reshuffled each epoch, seeded) and ``validation`` yield ``(char_ids
    [batch, max_chars] int32, labels [batch] int32)``; ``splits`` holds the sentences of
    every split as used (train and validation after their ``max_*_sentences``);
    ``num_train_chars`` counts the characters an epoch reads (padding not included).
    """

    vocab: Vocab
    max_chars: int
    splits: dict[str, LabelledSentences]
    train: object
    validation: object
    num_train_chars: int

    def ids(self, sentences) -> np.ndarray:
        return char_ids(sentences, self.vocab, self.max_chars)


def language_data_for(spec: dict, seed: int, vocab: Vocab | None = None) -> LanguageData:
    """The recipe's ``data`` section as batched datasets; the vocabulary is built on the
    training sentences (characters seen ``min_freq`` times), unless one is given."""
    import tensorflow as tf

    splits = labelled_splits(spec["source"])
    splits["train"] = splits["train"].sample(spec["max_train_sentences"], seed)
    splits["validation"] = splits["validation"].first(spec["max_validation_sentences"])
    for split in ("train", "validation"):
        if not len(splits[split]):
            raise DataError(f"data.source: the {split} split holds no sentences")
    if vocab is None:
        vocab = Vocab(
            [list(sentence) for sentence in splits["train"].sentences],
            min_freq=spec["min_freq"],
            reserved_tokens=(PAD, UNK),
        )
    max_chars, batch_size = spec["max_chars"], spec["batch_size"]

    def batches(part: LabelledSentences, shuffle: bool):
        dataset = tf.data.Dataset.from_tensor_slices(
            (char_ids(part.sentences, vocab, max_chars), part.labels)
        )
        if shuffle:
            dataset = dataset.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(BATCHES_AHEAD)

    return LanguageData(
        vocab=vocab,
        max_chars=max_chars,
        splits=splits,
        train=batches(splits["train"], shuffle=True),
        validation=batches(splits["validation"], shuffle=False),
        num_train_chars=sum(min(len(s), max_chars) for s in splits["train"].sentences),
    )
