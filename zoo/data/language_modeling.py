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
from zoo.data.splits import SPLITS, check_source, contiguous_split, source_names
from zoo.data.tfds_columns import split_columns
from zoo.data.time_machine import TimeMachine
from zoo.data.user_files import read_text_file
from zoo.data.word_corpus import FRA_ENG_WORDS, fra_eng_words_text
from zoo.text.formats import LanguageModelText
from zoo.text.vocab import Vocab

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
# What cleaning does to a user's text, for the messages about what is left of it.
CLEANING = "a corpus is cleaned to lowercase letters, each run of other characters one space"


def load_pretraining_text(source: str, text: LanguageModelText | None = None) -> str:
    """The cleaned text of a pretraining corpus, cleaned as ``text`` says (the chapter's
    cleaning by default).

    Args:
        source: ``"fra_eng_english"``, the distinct English sentences of fra-eng (all
            splits; with the chapter's cleaning 116,677 of them, 3,662,261 characters) in
            a fixed shuffled order, one space (or with lines kept, one line end) between
            sentences; or the path of a UTF-8 text file, all of it.
        text: the recipe's text format.
    """
    text = text or LanguageModelText()
    if source != FRA_ENG_ENGLISH:
        return _clean_file(source, text)
    sentences = [
        text.clean(raw.decode("utf-8")).strip()
        for split in SPLITS
        for raw in split_columns("fra_eng", split)["en_raw"]
    ]
    distinct = sorted(set(sentences) - {""})
    order = np.random.default_rng(PRETRAINING_ORDER_SEED).permutation(len(distinct))
    separator = "\n" if text.keeps_lines else " "
    joined = separator.join(distinct[index] for index in order)
    return joined + "\n" if text.keeps_lines else joined


def pretraining_data(
    source: str,
    data: LanguageModelData,
    *,
    text: LanguageModelText,
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
    ids = np.asarray(data.vocab[text.split(load_pretraining_text(source, text))], dtype=np.int32)
    stream = sequential_partitioning(ids, batch_size=batch_size, num_steps=num_steps, seed=seed)
    return replace(
        data,
        train=stream.repeat(),
        num_tokens={**data.num_tokens, "train": steps_per_epoch * batch_size * num_steps},
        token_ids={**data.token_ids, "pretrain": ids},
        steps_per_epoch=steps_per_epoch,
    )


def load_corpus_splits(source=TimeMachine.name, text: LanguageModelText | None = None):
    """The train / validation / test text of a corpus, cleaned as ``text`` says.

    Args:
        source: ``"time_machine"`` (with the chapter's cleaning, read from its TFDS data
            in ``data_dir()``, prepared there offline on first use; otherwise the shipped
            book as written), ``"fra_eng_words"`` (a word-level corpus, see
            ``zoo.data.word_corpus``), the path of a UTF-8 text file, cut 90 / 5 / 5 %, or a
            mapping ``{train: PATH, validation: PATH, test: PATH}`` of three files used
            as they are.
        text: the recipe's text format; the chapter's cleaning by default.

    A corpus that keeps its lines (``preprocess`` lower or none) is cut at the line end
    nearest each 90 / 5 / 5 % point, so that no line is split between two parts.

    Returns:
        Split name → cleaned text.
    """
    text = text or LanguageModelText()
    if isinstance(source, dict):
        return {name: _clean_file(source[name], text) for name in SPLITS}
    if source == TimeMachine.name:
        if text.preprocess == "chapter":
            return {name: split_columns(source, name)["text"][0].decode("utf-8") for name in SPLITS}
        return contiguous_split(text.clean(_shipped_book()), at_lines=True)
    if source == FRA_ENG_WORDS:
        return contiguous_split(text.clean(fra_eng_words_text()), at_lines=text.keeps_lines)
    return contiguous_split(_clean_file(source, text), at_lines=text.keeps_lines)


def _shipped_book() -> str:
    from zoo.data.shipped_files import shipped_file
    from zoo.data.time_machine import SOURCE_FILE

    return shipped_file(SOURCE_FILE).read_text(encoding="utf-8")


def _clean_file(path, text: LanguageModelText) -> str:
    """A user's text file cleaned as ``text`` says; one with nothing left is refused."""
    cleaned = text.clean(read_text_file(path))
    if not cleaned.strip():
        raise DataError(f"{path}: no letters, and {CLEANING}")
    return cleaned


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
    preprocess: str = "chapter",
    line_ends: str = "space",
) -> LanguageModelData:
    """The language-model datasets of a corpus.

    Args:
        source: ``"time_machine"``, ``"fra_eng_words"`` or the path of a text file (see
            ``load_corpus_splits``).
        token_level: ``"char"`` or ``"word"``.
        num_steps: tokens per row of a batch.
        batch_size: rows per batch.
        sampler: ``"random"`` (random sampling) or ``"sequential"`` (sequential
            partitioning, rows continue across consecutive batches) for training.
        min_freq: train tokens seen fewer times map to ``<unk>``. Defaults to 0.
        seed: the seed of the training sampler.
        vocab: reuse this vocabulary (a trained model's) instead of building one.
        tokenizer: for word tokens, ``None`` (split on spaces) or ``"nltk"``.
        preprocess: ``"chapter"``, ``"lower"`` or ``"none"`` (see ``zoo.text.formats``).
        line_ends: ``"space"`` or ``"eos"`` (every line ends with ``<eos>``).

    Returns:
        A ``LanguageModelData``.
    """
    if sampler not in SAMPLERS:
        raise DataError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    check_source(source)
    text = LanguageModelText(preprocess, token_level, tokenizer, line_ends)
    tokens = {
        name: text.split(split_text)
        for name, split_text in load_corpus_splits(source, text).items()
    }
    if vocab is None:
        vocab = Vocab(tokens["train"], min_freq=min_freq, reserved_tokens=text.reserved_tokens)
    ids = {
        name: np.asarray(vocab[split_tokens], dtype=np.int32)
        for name, split_tokens in tokens.items()
    }
    try:
        train = SAMPLERS[sampler](
            ids["train"], batch_size=batch_size, num_steps=num_steps, seed=seed
        )
    except DataError as error:  # too little text: say where it came from and why
        why = f"; {CLEANING}" if text.preprocess == "chapter" else ""
        raise DataError(
            f"{source_names(source)} (train split, after cleaning): {error}{why}"
        ) from None
    return LanguageModelData(
        vocab=vocab,
        train=train,
        validation=sequential_windows(
            ids["validation"], batch_size=batch_size, num_steps=num_steps
        ),
        test=sequential_windows(ids["test"], batch_size=batch_size, num_steps=num_steps),
        num_tokens={name: len(split_ids) for name, split_ids in ids.items()},
        token_ids=ids,
    )


def language_model_data_for(spec: dict, seed: int = 0, vocab: Vocab | None = None):
    """``language_model_data`` of a recipe's ``data`` section."""
    return language_model_data(
        source=spec["source"],
        token_level=spec["token_level"],
        num_steps=spec["num_steps"],
        batch_size=spec["batch_size"],
        sampler=spec["sampler"],
        min_freq=spec["min_freq"],
        seed=seed,
        vocab=vocab,
        tokenizer=spec["tokenizer"],
        preprocess=spec["preprocess"],
        line_ends=spec["line_ends"],
    )
