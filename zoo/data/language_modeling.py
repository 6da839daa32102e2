"""Language-model data: a corpus (The Time Machine or a user's text file) cleaned, split,
tokenized, mapped through a vocabulary and batched by one of the chapter's samplers.

Example:
    >>> data = language_model_data("time_machine", num_steps=35, batch_size=32)
    >>> len(data.vocab), sum(data.num_tokens.values())
    (28, 173428)
    >>> x, y = next(iter(data.train))
    >>> x.shape, y.shape
    (TensorShape([32, 35]), TensorShape([32, 35]))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.data.samplers import random_sampling, sequential_partitioning, sequential_windows
from zoo.data.splits import SPLITS, contiguous_split
from zoo.data.tfds_columns import split_columns
from zoo.data.time_machine import TimeMachine
from zoo.data.user_files import read_text_file
from zoo.text.cleaning import clean_time_machine, tokenize
from zoo.text.vocab import LANGUAGE_MODEL_RESERVED_TOKENS, Vocab

SAMPLERS = {"random": random_sampling, "sequential": sequential_partitioning}


@dataclass
class LanguageModelData:
    """The batched splits of a language-model corpus and their vocabulary.

    Attributes:
        vocab: built from the train split only (or the one passed in).
        train: ONE epoch of ``(X, Y)``, int32 ``[batch_size, num_steps]``, from the chosen
            sampler; each iteration draws a new offset.
        validation: deterministic windows from offset 0 covering every token once; see
            ``samplers.sequential_windows`` (the last batch may be smaller).
        test: as ``validation``.
        num_tokens: split name → number of tokens.
        token_ids: split name → the whole split as ids ``[num_tokens]``, in order (for
            evaluation that carries the state through the text).
        steps_per_epoch: ``None`` when ``train`` is one epoch; otherwise ``train`` is
            endless (a pretraining stream) and an epoch is this many of its batches.
    """

    vocab: Vocab
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    num_tokens: dict[str, int]
    token_ids: dict[str, np.ndarray]
    steps_per_epoch: int | None = None


# A corpus to pretrain on: more English than The Time Machine, with the same letters.
FRA_ENG_ENGLISH = "fra_eng_english"
# The fixed order of its sentences (part of what the corpus is, like a split seed).
PRETRAINING_ORDER_SEED = 0


def load_pretraining_text(source: str) -> str:
    """The cleaned text of a pretraining corpus, every run of non-letters one space and
    lower case, as The Time Machine is cleaned.

    Args:
        source: ``"fra_eng_english"``, the 116,677 distinct English sentences of
            fra-eng (all splits; 3,662,261 characters) in a fixed shuffled order, one
            space between sentences; or the path of a UTF-8 text file, all of it.
    """
    if source != FRA_ENG_ENGLISH:
        return clean_time_machine(read_text_file(source))
    sentences = [
        clean_time_machine(raw.decode("utf-8")).strip()
        for split in SPLITS
        for raw in split_columns("fra_eng", split)["en_raw"]
    ]
    distinct = sorted(set(sentences) - {""})
    order = np.random.default_rng(PRETRAINING_ORDER_SEED).permutation(len(distinct))
    return " ".join(distinct[index] for index in order)


def pretraining_data(
    source: str,
    data: LanguageModelData,
    *,
    token_level: str,
    num_steps: int,
    batch_size: int,
    steps_per_epoch: int,
    seed: int,
) -> LanguageModelData:
    """``data`` with its training stream replaced by an endless sequential partitioning of
    a pretraining corpus (see ``load_pretraining_text``), read through ``data``'s
    vocabulary, ``steps_per_epoch`` batches an epoch; validation and test stay those of
    ``data``, so pretraining is measured on the text the model is for.

    Each pass over the corpus draws a new offset, as the training sampler's epochs do.
    ``token_ids["pretrain"]`` holds the corpus's ids.
    """
    ids = np.asarray(
        data.vocab[tokenize(load_pretraining_text(source), level=token_level)], dtype=np.int32
    )
    stream = sequential_partitioning(ids, batch_size=batch_size, num_steps=num_steps, seed=seed)
    return replace(
        data,
        train=stream.repeat(),
        num_tokens={**data.num_tokens, "train": steps_per_epoch * batch_size * num_steps},
        token_ids={**data.token_ids, "pretrain": ids},
        steps_per_epoch=steps_per_epoch,
    )


def load_corpus_splits(source: str = TimeMachine.name) -> dict[str, str]:
    """The cleaned train / validation / test text of a corpus.

    Args:
        source: ``"time_machine"`` (read from its TFDS data in ``data_dir()``,
            prepared there offline on first use), or the path of a UTF-8 text file, which
            is cleaned like The Time Machine and cut contiguously 90 / 5 / 5 %.

    Returns:
        Split name → cleaned text.
    """
    if source == TimeMachine.name:
        return {name: split_columns(source, name)["text"][0].decode("utf-8") for name in SPLITS}
    return contiguous_split(clean_time_machine(read_text_file(source)))


def language_model_data(
    source: str = TimeMachine.name,
    token_level: str = "char",
    num_steps: int = 32,
    batch_size: int = 32,
    sampler: str = "random",
    min_freq: int = 0,
    seed: int = 0,
    vocab: Vocab | None = None,
    tokenizer: str | None = None,
) -> LanguageModelData:
    """The language-model datasets of a corpus.

    Args:
        source: ``"time_machine"`` or the path of a text file (see ``load_corpus_splits``).
        token_level: ``"char"`` or ``"word"``.
        num_steps: tokens per row of a batch.
        batch_size: rows per batch.
        sampler: ``"random"`` (random sampling) or ``"sequential"`` (sequential
            partitioning, rows continue across consecutive batches) for training.
        min_freq: train tokens seen fewer times map to ``<unk>``. Defaults to 0.
        seed: the seed of the training sampler.
        vocab: reuse this vocabulary (a trained model's) instead of building one.
        tokenizer: for word tokens, ``None`` (split on spaces) or ``"nltk"``.

    Returns:
        A ``LanguageModelData``.
    """
    if sampler not in SAMPLERS:
        raise DataError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    tokens = {
        name: tokenize(text, level=token_level, tokenizer=tokenizer)
        for name, text in load_corpus_splits(source).items()
    }
    if vocab is None:
        vocab = Vocab(
            tokens["train"], min_freq=min_freq, reserved_tokens=LANGUAGE_MODEL_RESERVED_TOKENS
        )
    ids = {
        name: np.asarray(vocab[split_tokens], dtype=np.int32)
        for name, split_tokens in tokens.items()
    }
    return LanguageModelData(
        vocab=vocab,
        train=SAMPLERS[sampler](
            ids["train"], batch_size=batch_size, num_steps=num_steps, seed=seed
        ),
        validation=sequential_windows(
            ids["validation"], batch_size=batch_size, num_steps=num_steps
        ),
        test=sequential_windows(ids["test"], batch_size=batch_size, num_steps=num_steps),
        num_tokens={name: len(split_ids) for name, split_ids in ids.items()},
        token_ids=ids,
    )
