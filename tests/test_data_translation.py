import numpy as np
import pytest
import tensorflow as tf
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data import DataError, translation_data
from zoo.data.errors import MalformedDataWarning
from zoo.data.translation import load_translation_splits
from zoo.text.sequences import truncate_pad

NUM_STEPS = 9
BATCH_SIZE = 64


def test_truncate_pad_cuts_or_pads_to_num_steps():
    assert truncate_pad([5, 6], num_steps=4, pad_id=0) == [5, 6, 0, 0]
    assert truncate_pad([5, 6, 7, 8, 9], num_steps=4, pad_id=0) == [5, 6, 7, 8]


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    """A small TSV: 400 distinct sentences, most with two translations."""
    lines = []
    for index in range(400):
        words = " ".join(["word"] * (index % 12))
        lines.append(f"Sentence {index % 50} {words}.\tPhrase {index % 50} {words}\u00a0!")
        lines.append(f"Sentence {index % 50} {words}.\tAutre {index % 50}.")
    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def first_batch(dataset):
    (source, source_valid_len, decoder_input), target = next(iter(dataset))
    return source.numpy(), source_valid_len.numpy(), decoder_input.numpy(), target.numpy()


def test_batches_end_in_eos_are_padded_and_shift_the_decoder_input(pairs_file):
    data = translation_data(str(pairs_file), num_steps=NUM_STEPS, batch_size=16, min_freq=1)
    spec = data.train.element_spec
    assert [tensor.shape.as_list() for tensor in spec[0]] == [
        [None, NUM_STEPS],
        [None],
        [None, NUM_STEPS],
    ]
    assert all(tensor.dtype == tf.int32 for tensor in (*spec[0], spec[1]))
    source, source_valid_len, decoder_input, target = first_batch(data.train)
    src, tgt = data.src_vocab, data.tgt_vocab
    for row in range(len(source)):
        length = source_valid_len[row]
        assert source[row, length - 1] == src["<eos>"]
        assert np.all(source[row, length:] == src["<pad>"])
        assert src["<pad>"] not in source[row, :length]
        target_length = int(np.sum(target[row] != tgt["<pad>"]))
        assert target[row, target_length - 1] == tgt["<eos>"]
        assert decoder_input[row, 0] == tgt["<bos>"]
        assert np.array_equal(decoder_input[row, 1:], target[row, :-1])


def test_long_sentences_keep_their_eos(pairs_file):
    data = translation_data(str(pairs_file), num_steps=4, batch_size=400, min_freq=1)
    source, source_valid_len, _, target = first_batch(data.validation)
    assert np.all(source[:, -1][source_valid_len == 4] == data.src_vocab["<eos>"])
    assert np.all(np.any(target == data.tgt_vocab["<eos>"], axis=1))


def test_a_tsv_is_split_by_source_sentence_and_keeps_raw_references(pairs_file):
    splits = load_translation_splits(str(pairs_file), seed=0)
    sources = {name: set(pairs.source) for name, pairs in splits.items()}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["validation"]
    assert sum(len(pairs) for pairs in splits.values()) == 800
    for pairs in splits.values():
        for raw, cleaned in zip(pairs.target_raw, pairs.target, strict=True):
            assert "\u00a0" not in cleaned and cleaned.endswith((" !", " ."))
            assert raw.startswith(("Phrase", "Autre"))  # as written
    assert splits != load_translation_splits(str(pairs_file), seed=1)


def test_vocabularies_come_from_train_and_passed_ones_are_reused(pairs_file):
    data = translation_data(str(pairs_file), num_steps=NUM_STEPS, batch_size=8, min_freq=1)
    train_words = {
        word
        for sentence in load_translation_splits(str(pairs_file))["train"].source
        for word in sentence.split()
    }
    assert set(data.src_vocab.idx_to_token) == train_words | {"<pad>", "<bos>", "<eos>", "<unk>"}
    again = translation_data(
        str(pairs_file), src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab, min_freq=5
    )
    assert again.src_vocab is data.src_vocab and again.tgt_vocab is data.tgt_vocab


def test_bucketing_cuts_each_batch_to_its_longest_sentence(pairs_file):
    data = translation_data(str(pairs_file), num_steps=16, batch_size=8, min_freq=1, bucket=True)
    pad = data.tgt_vocab["<pad>"]
    widths = set()
    for (source, source_valid_len, decoder_input), target in data.train:
        assert source.shape[1] == int(tf.reduce_max(source_valid_len))
        assert target.shape == decoder_input.shape
        assert target.shape[1] == int(
            tf.reduce_max(tf.reduce_sum(tf.cast(target != pad, tf.int32), axis=1))
        )
        widths.add(target.shape[1])
    assert len(widths) > 2


def test_the_train_set_is_reshuffled_each_epoch_reproducibly(pairs_file):
    def first_sources(seed):
        data = translation_data(str(pairs_file), batch_size=8, min_freq=1, seed=seed)
        return [first_batch(data.train)[0] for _ in range(2)]

    epoch_one, epoch_two = first_sources(seed=3)
    assert not np.array_equal(epoch_one, epoch_two)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(first_sources(seed=3), (epoch_one, epoch_two), strict=True)
    )


def test_malformed_pairs_are_reported_and_the_rest_used(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a b.\tc d.\n" * 100 + "no tab\n", encoding="utf-8")
    with pytest.warns(MalformedDataWarning, match="line 101: no tab"):
        splits = load_translation_splits(str(path))
    assert sum(len(pairs) for pairs in splits.values()) == 100


def test_num_steps_below_two_is_an_error(pairs_file):
    with pytest.raises(DataError, match="num_steps"):
        translation_data(str(pairs_file), num_steps=1)


@pytest.mark.slow
def test_fra_eng_gives_teacher_forcing_batches_and_raw_test_references(data_dir):  # noqa: F811
    data = translation_data("fra_eng", num_steps=NUM_STEPS, batch_size=BATCH_SIZE, min_freq=2)
    assert data.num_examples["test"] >= 5000
    assert sum(data.num_examples.values()) == 167130
    assert data.src_vocab.idx_to_token[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert len(data.test_pairs) == data.num_examples["test"]
    assert len(data.test_pairs.target_raw) == len(data.test_pairs.source)
    source, source_valid_len, decoder_input, target = first_batch(data.test)
    assert source.shape == decoder_input.shape == target.shape == (BATCH_SIZE, NUM_STEPS)
    words = data.test_pairs.source[0].split()[: NUM_STEPS - 1]
    assert data.src_vocab.to_tokens(source[0, : len(words)]) == [
        word if word in data.src_vocab.token_to_idx else "<unk>" for word in words
    ]
