import socket

import pytest
import tensorflow_datasets as tfds
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data import DataError, Vocab, shipped_files
from zoo.data.shipped_files import shipped_file
from zoo.text.cleaning import clean_time_machine

SPLIT_LENGTHS = {"train": 156085, "validation": 8672, "test": 8671}


def load_texts(directory) -> dict[str, str]:
    splits = tfds.as_numpy(tfds.load("time_machine", data_dir=str(directory), batch_size=-1))
    assert all(len(split["text"]) == 1 for split in splits.values())  # one example each
    return {name: split["text"][0].decode("utf-8") for name, split in splits.items()}


def test_tfds_load_gives_contiguous_90_5_5_splits_of_the_cleaned_text(data_dir):  # noqa: F811
    texts = load_texts(data_dir)
    assert {name: len(text) for name, text in texts.items()} == SPLIT_LENGTHS
    cleaned = clean_time_machine(shipped_file("timemachine.txt").read_text(encoding="utf-8"))
    assert texts["train"] + texts["validation"] + texts["test"] == cleaned


def test_the_chapter_counts_173428_chars_and_a_28_token_char_vocabulary(data_dir):  # noqa: F811
    texts = load_texts(data_dir)
    assert sum(len(text) for text in texts.values()) == 173428
    assert len(Vocab(texts["train"])) == 28
    assert len(Vocab("".join(texts.values()))) == 28
    assert set(Vocab(texts["train"]).idx_to_token) == {"<unk>", " "} | set(
        "abcdefghijklmnopqrstuvwxyz"
    )


def test_a_second_independent_preparation_is_identical_and_offline(data_dir, tmp_path, monkeypatch):  # noqa: F811
    def no_network(*args, **kwargs):
        raise AssertionError("preparing the dataset tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    tfds.builder("time_machine", data_dir=str(tmp_path)).download_and_prepare()
    assert load_texts(tmp_path) == load_texts(data_dir)


def test_a_damaged_shipped_file_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(shipped_files.SHA256, "timemachine.txt", "0" * 64)
    with pytest.raises(DataError) as error:
        shipped_file("timemachine.txt")
    message = str(error.value)
    assert "\n" not in message and "sha256" in message and "timemachine.txt" in message
    with pytest.raises(DataError):
        tfds.builder("time_machine", data_dir=str(tmp_path)).download_and_prepare()
