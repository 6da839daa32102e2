import numpy as np
import pytest
import tensorflow as tf
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data import DataError, Vocab, language_model_data
from zoo.data.language_modeling import load_corpus_splits
from zoo.text.cleaning import clean_time_machine

NUM_STEPS = 35
BATCH_SIZE = 32


@pytest.fixture(scope="module")
def time_machine(data_dir):  # noqa: F811
    return language_model_data("time_machine", num_steps=NUM_STEPS, batch_size=BATCH_SIZE, seed=0)


def test_time_machine_chars_make_173428_tokens_and_a_28_token_vocabulary(time_machine):
    assert len(time_machine.vocab) == 28
    assert time_machine.vocab.idx_to_token[:2] == ["<unk>", " "]
    assert time_machine.num_tokens == {"train": 156085, "validation": 8672, "test": 8671}
    assert sum(time_machine.num_tokens.values()) == 173428


def test_train_batches_are_num_steps_wide_and_shifted_by_one(time_machine):
    spec = tf.TensorSpec([BATCH_SIZE, NUM_STEPS], tf.int32)
    assert time_machine.train.element_spec == (spec, spec)
    inputs, targets = next(iter(time_machine.train))
    text = "".join(time_machine.vocab.to_tokens(inputs[0].numpy()))
    assert text in load_corpus_splits("time_machine")["train"]
    assert np.array_equal(inputs[:, 1:], targets[:, :-1])


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluation_splits_predict_every_token_once(time_machine, split):
    ids = time_machine.vocab[list(load_corpus_splits("time_machine")[split])]
    targets = np.concatenate([y.numpy().reshape(-1) for _, y in getattr(time_machine, split)])
    assert targets.tolist() == ids[1:]


def test_a_users_text_file_is_cleaned_split_90_5_5_and_batched(tmp_path):
    text = "The Time Traveller (for so it will be convenient to speak of him)\n" * 300
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    splits = load_corpus_splits(str(path))
    assert "".join(splits.values()) == clean_time_machine(text)
    assert abs(len(splits["train"]) / len(clean_time_machine(text)) - 0.9) < 0.001
    data = language_model_data(
        str(path), token_level="word", num_steps=5, batch_size=4, sampler="sequential"
    )
    assert data.vocab.idx_to_token[0] == "<unk>" and "traveller" in data.vocab.idx_to_token
    inputs, targets = next(iter(data.train))
    assert inputs.shape == targets.shape == (4, 5)


def test_a_given_vocabulary_is_reused_and_min_freq_applies(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("z" + "abc " * 2000, encoding="utf-8")
    vocab = Vocab(["<unk>", "a", "b"])
    data = language_model_data(str(path), num_steps=4, batch_size=2, vocab=vocab)
    assert data.vocab is vocab
    data = language_model_data(str(path), num_steps=4, batch_size=2, min_freq=10)
    assert "z" not in data.vocab.idx_to_token  # seen once in train
    assert set(data.vocab.idx_to_token) == {"<unk>", " ", "a", "b", "c"}


def test_an_unknown_sampler_or_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="sampler"):
        language_model_data("time_machine", sampler="shuffled")
    with pytest.raises(DataError, match="not found"):
        language_model_data(str(tmp_path / "missing.txt"))
