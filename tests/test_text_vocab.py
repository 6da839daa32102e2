import numpy as np
import pytest

from zoo.data import DataError, Vocab
from zoo.text.vocab import TRANSLATION_RESERVED_TOKENS


def test_order_is_reserved_then_frequency_then_alphabetical():
    vocab = Vocab(list("bbbaacdd"), reserved_tokens=("<unk>",))
    assert vocab.idx_to_token == ["<unk>", "b", "a", "d", "c"]


def test_min_freq_maps_rare_tokens_to_unk():
    vocab = Vocab(list("aaab"), min_freq=2)
    assert vocab.idx_to_token == ["<unk>", "a"]
    assert vocab["b"] == vocab.unk == 0
    assert vocab[["a", "b", "z"]] == [1, 0, 0]


def test_lists_of_lists_are_flattened_and_reserved_tokens_come_first():
    vocab = Vocab([["go", "."], ["go", "!"]], reserved_tokens=TRANSLATION_RESERVED_TOKENS)
    assert vocab.idx_to_token[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab.idx_to_token[4] == "go"
    assert vocab.unk == 3
    assert len(vocab) == 7


def test_reserved_tokens_seen_in_the_corpus_are_not_repeated():
    vocab = Vocab(["<unk>", "a", "<unk>"])
    assert vocab.idx_to_token == ["<unk>", "a"]


def test_unk_is_added_when_the_reserved_tokens_lack_it():
    assert Vocab(["a"], reserved_tokens=("<pad>",)).idx_to_token == ["<pad>", "<unk>", "a"]


def test_to_tokens_accepts_ids_lists_and_arrays():
    vocab = Vocab("abracadabra")
    assert vocab.to_tokens(1) == "a"
    assert vocab.to_tokens([1, 2]) == ["a", "b"]
    assert vocab.to_tokens(np.array([2, 3], np.int32)) == ["b", "r"]


def test_save_load_round_trip_gives_identical_ids(tmp_path):
    corpus = list("the time machine ") + ["déjà", "vu", "été", "<bos>"]
    vocab = Vocab(corpus, reserved_tokens=TRANSLATION_RESERVED_TOKENS)
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded == vocab
    assert loaded[corpus] == vocab[corpus]
    assert loaded[" "] == vocab[" "]  # a space token survives
    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == vocab.idx_to_token


def test_vocabularies_differ_when_their_tokens_do():
    assert Vocab("ab") != Vocab("abc")
    assert Vocab("ab") == Vocab("ba")  # same counts, ties alphabetical


@pytest.mark.parametrize("content", ["", "a\nb", "<unk>\na\na\n", "a\nb\n"])
def test_loading_a_bad_vocabulary_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        Vocab.load(path)
    assert "\n" not in str(error.value)


def test_loading_a_missing_vocabulary_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        Vocab.load(tmp_path / "missing.txt")


def test_a_token_with_a_newline_cannot_be_saved(tmp_path):
    with pytest.raises(DataError):
        Vocab(["a\nb"]).save(tmp_path / "vocab.txt")
