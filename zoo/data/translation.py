"""Translation data: sentence pairs (fra-eng or a user's TSV file) cleaned, split,
tokenized into words, mapped through source and target vocabularies, truncated or
padded to ``num_steps`` and batched for teacher forcing.

Example:
    >>> data = translation_data("fra_eng", num_steps=9, batch_size=64)
    >>> (source, source_valid_len, decoder_input), target = next(iter(data.train))
    >>> source.shape, source_valid_len.shape, decoder_input.shape, target.shape
    (TensorShape([64, 9]), TensorShape([64]), TensorShape([64, 9]), TensorShape([64, 9]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.data.fra_eng import FraEng
from zoo.data.splits import SPLITS, check_source, hash_split, source_names
from zoo.data.tfds_columns import split_columns
from zoo.data.user_files import read_pairs_tsv
from zoo.text.cleaning import tokenize
from zoo.text.formats import TranslationText
from zoo.text.sequences import encode_words
from zoo.text.vocab import BOS, PAD, TRANSLATION_RESERVED_TOKENS, Vocab

# The chapter's: words seen once in train map to <unk>.
DEFAULT_MIN_FREQ = 2
# TranslationPairs field → fra_eng feature.
FRA_ENG_FEATURES = {"source": "en", "target": "fr", "source_raw": "en_raw", "target_raw": "fr_raw"}


@dataclass
class TranslationPairs:
    """The sentence pairs of one split, in a fixed order (fra-eng: by line number).

    Attributes:
        source, target: cleaned sentences (fra-eng: English, French).
        source_raw, target_raw: the sentences as written; ``target_raw`` is the reference
            for sacrebleu.
    """

    source: list[str] = field(default_factory=list)
    target: list[str] = field(default_factory=list)
    source_raw: list[str] = field(default_factory=list)
    target_raw: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.source)

    def append(self, *, source: str, target: str, source_raw: str, target_raw: str) -> None:
        self.source.append(source)
        self.target.append(target)
        self.source_raw.append(source_raw)
        self.target_raw.append(target_raw)


@dataclass
class TranslationData:
    """The batched splits of a translation corpus and their vocabularies.

    Each dataset yields ``((source, source_valid_len, decoder_input), target)``, int32:
    ``source`` and ``target`` ``[batch, num_steps]`` end in ``<eos>`` and are padded with
    ``<pad>``; ``source_valid_len`` ``[batch]`` counts the source tokens with ``<eos>``;
    ``decoder_input`` is ``<bos>`` followed by ``target[:, :-1]`` (teacher forcing).
    With bucketing the time dimension is cut to the longest sentence of the batch.

    Attributes:
        src_vocab, tgt_vocab: built from the train split only (or the ones passed in).
        train: shuffled anew at each iteration (seeded).
        validation, test: in split order.
        test_pairs: the test sentences, cleaned and raw, in the order of ``test``.
        validation_pairs: the same for ``validation`` (to choose decoding settings on).
        num_examples: split name → number of pairs.
        num_target_tokens: split name → target tokens (words and <eos>, cut to num_steps).
    """

    src_vocab: Vocab
    tgt_vocab: Vocab
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    test_pairs: TranslationPairs
    num_examples: dict[str, int]
    num_target_tokens: dict[str, int] = field(default_factory=dict)
    validation_pairs: TranslationPairs | None = None


def load_translation_splits(
    source=FraEng.name, seed: int = 0, text: TranslationText | None = None
) -> dict[str, TranslationPairs]:
    """The train / validation / test pairs of a translation corpus.

    Args:
        source: ``"fra_eng"`` (read from its TFDS data in ``data_dir()``, prepared there
            offline on first use; its split is fixed), the path of a
            ``source<TAB>target`` file, split by a hash of (``seed``, cleaned source
            sentence) so that pairs sharing a source sentence stay together, or a
            mapping ``{train: PATH, validation: PATH, test: PATH}`` of three such files
            used as they are.
        seed: the split seed for a TSV file.
        text: how sentences are cleaned; the chapter's cleaning by default.

    Returns:
        Split name → ``TranslationPairs``.
    """
    text = text or TranslationText()
    if isinstance(source, dict):
        return {name: _file_pairs(source[name], text) for name in SPLITS}
    if source == FraEng.name:
        splits = {name: _fra_eng_pairs(name) for name in SPLITS}
        if text.preprocess != "chapter":  # cleaned again from the sentences as written
            splits = {name: _recleaned(pairs, text) for name, pairs in splits.items()}
        return splits
    splits = {name: TranslationPairs() for name in SPLITS}
    for pair in _file_pairs(source, text, as_pairs=True):
        cleaned_source = text.clean(pair.source)
        splits[hash_split(cleaned_source, seed=seed)].append(
            source=cleaned_source,
            target=text.clean(pair.target),
            source_raw=pair.source,
            target_raw=pair.target,
        )
    return splits


def _file_pairs(path, text: TranslationText, as_pairs: bool = False):
    """The pairs of a TSV file: as read (``as_pairs``), or cleaned ``TranslationPairs``."""
    pairs, _ = read_pairs_tsv(path)
    if as_pairs:
        return pairs
    found = TranslationPairs()
    for pair in pairs:
        found.append(
            source=text.clean(pair.source),
            target=text.clean(pair.target),
            source_raw=pair.source,
            target_raw=pair.target,
        )
    return found


def _recleaned(pairs: TranslationPairs, text: TranslationText) -> TranslationPairs:
    return TranslationPairs(
        source=[text.clean(sentence) for sentence in pairs.source_raw],
        target=[text.clean(sentence) for sentence in pairs.target_raw],
        source_raw=pairs.source_raw,
        target_raw=pairs.target_raw,
    )


def translation_data(
    source: str = FraEng.name,
    num_steps: int = 9,
    batch_size: int = 64,
    min_freq: int = DEFAULT_MIN_FREQ,
    seed: int = 0,
    src_vocab: Vocab | None = None,
    tgt_vocab: Vocab | None = None,
    bucket: bool = False,
    tokenizer: str | None = None,
    preprocess: str = "chapter",
    subword_vocab_size: int = 8000,
) -> TranslationData:
    """The translation datasets of a corpus.

    Args:
        source: ``"fra_eng"`` or the path of a TSV file (see ``load_translation_splits``).
        num_steps: tokens per sentence after truncation or padding, ``<eos>`` included
            (a long sentence keeps its first ``num_steps - 1`` words and its ``<eos>``).
        batch_size: pairs per batch.
        min_freq: train words seen fewer times map to ``<unk>``. Defaults to 2.
        seed: the seed of the train shuffle, and of the split of a TSV file.
        src_vocab, tgt_vocab: reuse these vocabularies (a trained model's).
        bucket: group pairs of similar length into batches (4 buckets by length) and cut
            each batch to its longest sentence, instead of padding all to ``num_steps``.
        tokenizer: ``None`` (split on spaces, the chapter's way), ``"nltk"`` or
            ``"subword"``: WordPiece pieces learned on each side's train split, at most
            ``subword_vocab_size`` of them (``zoo.text.subword``); the vocabularies are
            then the pieces, and ``min_freq`` does not apply.
        preprocess: ``"chapter"``, ``"lower"`` or ``"none"`` (``zoo.text.formats``).

    Returns:
        A ``TranslationData``.
    """
    if num_steps < 2:
        raise DataError(f"num_steps must be at least 2 (a word and <eos>), got {num_steps}")
    check_source(source)
    text = TranslationText(preprocess=preprocess, tokenizer=tokenizer)
    splits = load_translation_splits(source, seed=seed, text=text)
    if not len(splits["train"]):
        raise DataError(f"{source_names(source)}: the train split is empty")
    word_tokenizer = None if tokenizer == "subword" else tokenizer
    src_tokens = {name: _words(pairs.source, word_tokenizer) for name, pairs in splits.items()}
    tgt_tokens = {name: _words(pairs.target, word_tokenizer) for name, pairs in splits.items()}
    if tokenizer == "subword":
        src_vocab = src_vocab or learn_subword_vocab(src_tokens["train"], subword_vocab_size)
        tgt_vocab = tgt_vocab or learn_subword_vocab(tgt_tokens["train"], subword_vocab_size)
        src_tokens = _pieces(src_tokens, text.with_vocab(src_vocab))
        tgt_tokens = _pieces(tgt_tokens, text.with_vocab(tgt_vocab))
    if src_vocab is None:
        src_vocab = Vocab(
            src_tokens["train"], min_freq=min_freq, reserved_tokens=TRANSLATION_RESERVED_TOKENS
        )
    if tgt_vocab is None:
        tgt_vocab = Vocab(
            tgt_tokens["train"], min_freq=min_freq, reserved_tokens=TRANSLATION_RESERVED_TOKENS
        )
    datasets, num_target_tokens = {}, {}
    for name in SPLITS:
        source_ids, source_valid_len = encode_words(src_tokens[name], src_vocab, num_steps)
        target_ids, target_len = encode_words(tgt_tokens[name], tgt_vocab, num_steps)
        num_target_tokens[name] = int(target_len.sum())
        decoder_input = np.concatenate(
            [np.full([len(target_ids), 1], tgt_vocab[BOS], np.int32), target_ids[:, :-1]], axis=1
        )
        dataset = tf.data.Dataset.from_tensor_slices(
            ((source_ids, source_valid_len, decoder_input), target_ids)
        )
        if name == "train":
            dataset = dataset.shuffle(len(target_ids), seed=seed, reshuffle_each_iteration=True)
        if bucket:
            dataset = _bucket(dataset, num_steps, batch_size, pad_id=tgt_vocab[PAD])
        else:
            dataset = dataset.batch(batch_size)
        datasets[name] = dataset.prefetch(tf.data.AUTOTUNE)
    return TranslationData(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        test_pairs=splits["test"],
        validation_pairs=splits["validation"],
        num_examples={name: len(pairs) for name, pairs in splits.items()},
        num_target_tokens=num_target_tokens,
        **datasets,
    )


def translation_data_for(spec: dict, seed: int = 0, src_vocab=None, tgt_vocab=None):
    """``translation_data`` of a recipe's ``data`` section."""
    return translation_data(
        source=spec["source"],
        num_steps=spec["num_steps"],
        batch_size=spec["batch_size"],
        min_freq=spec["min_freq"],
        seed=seed,
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        bucket=spec["bucket"],
        tokenizer=spec["tokenizer"],
        preprocess=spec["preprocess"],
        subword_vocab_size=spec["subword_vocab_size"],
    )


def _fra_eng_pairs(split: str) -> TranslationPairs:
    """The pairs of one fra_eng split, in line order."""
    columns = split_columns(FraEng.name, split)
    order = np.argsort(columns["id"], kind="stable")
    return TranslationPairs(
        **{
            field_name: [text.decode("utf-8") for text in columns[feature][order]]
            for field_name, feature in FRA_ENG_FEATURES.items()
        }
    )


def learn_subword_vocab(train_words: list[list[str]], vocab_size: int) -> Vocab:
    """A WordPiece vocabulary learned on one side's training words: the reserved tokens,
    then every learned piece in the learner's order (each character, alone and as a
    continuation, then longer pieces), so that a word never seen in training is still
    spelled in pieces of it."""
    from zoo.text.subword import learn_wordpiece

    return Vocab.from_tokens(
        learn_wordpiece(train_words, vocab_size, list(TRANSLATION_RESERVED_TOKENS))
    )


def _pieces(tokens: dict, text: TranslationText) -> dict:
    return {
        name: [text.pieces.tokenize(words) for words in sentences]
        for name, sentences in tokens.items()
    }


def _words(sentences: list[str], tokenizer: str | None) -> list[list[str]]:
    return [tokenize(sentence, level="word", tokenizer=tokenizer) for sentence in sentences]


def _bucket(
    dataset: tf.data.Dataset, num_steps: int, batch_size: int, pad_id: int
) -> tf.data.Dataset:
    """Batches of pairs of similar length, each cut to its longest source and target."""
    boundaries = sorted({num_steps * quarter // 4 + 1 for quarter in (1, 2, 3)})

    def length(inputs, target):  # of one pair: its longer side
        return tf.maximum(inputs[1], tf.math.count_nonzero(target != pad_id, dtype=tf.int32))

    def cut(inputs, target):
        source, source_valid_len, decoder_input = inputs
        source_length = tf.reduce_max(source_valid_len)
        target_length = tf.reduce_max(
            tf.math.count_nonzero(target != pad_id, axis=1, dtype=tf.int32)
        )
        return (
            (source[:, :source_length], source_valid_len, decoder_input[:, :target_length]),
            target[:, :target_length],
        )

    return dataset.bucket_by_sequence_length(
        element_length_func=length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        no_padding=True,
    ).map(cut)
