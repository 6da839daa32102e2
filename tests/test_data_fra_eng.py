import zipfile

import numpy as np
import pytest
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data.fra_eng import MEMBER, SPLIT_SEED
from zoo.data.shipped_files import shipped_file
from zoo.data.splits import SPLITS, hash_split
from zoo.data.tfds_columns import split_columns
from zoo.text.cleaning import clean_translation

NUM_LINES = 167130


def sorted_by_line(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(columns["id"])
    return {feature: column[order] for feature, column in columns.items()}


def load_splits() -> dict[str, dict[str, np.ndarray]]:
    """Split → feature → array, sorted by line number, from ``zoo.data.data_dir()``."""
    return {name: sorted_by_line(split_columns("fra_eng", name)) for name in SPLITS}


@pytest.fixture(scope="module")
def splits(data_dir):  # noqa: F811
    return load_splits()


def test_every_line_is_in_exactly_one_split_and_test_has_at_least_5000_pairs(splits):
    ids = np.concatenate([splits[name]["id"] for name in SPLITS])
    assert sorted(ids.tolist()) == list(range(1, NUM_LINES + 1))
    assert len(splits["test"]["id"]) >= 5000
    assert len(splits["validation"]["id"]) >= 5000
    assert 0.88 < len(splits["train"]["id"]) / NUM_LINES < 0.92


def test_no_english_sentence_is_in_two_splits(splits):
    english = {name: set(splits[name]["en"].tolist()) for name in SPLITS}
    assert not english["train"] & english["test"]
    assert not english["train"] & english["validation"]
    assert not english["validation"] & english["test"]


def test_the_split_is_the_seeded_hash_of_the_cleaned_english_sentence(splits):
    with zipfile.ZipFile(shipped_file("fra-eng.zip")) as archive:
        lines = archive.read(MEMBER).decode("utf-8").splitlines()
    for name in SPLITS:
        for line_id in splits[name]["id"][::50]:
            english = clean_translation(lines[line_id - 1].split("\t")[0])
            assert hash_split(english, seed=SPLIT_SEED) == name


def test_features_hold_cleaned_and_raw_text(splits):
    train = splits["train"]
    first = {feature: column[0] for feature, column in train.items()}
    assert first["id"] == 1
    assert first["en_raw"].decode() == "Go." and first["en"].decode() == "go ."
    assert first["fr_raw"].decode() == "Va !" and first["fr"].decode() == "va !"
    raw = [text.decode() for text in train["fr_raw"][:2000]]
    assert any("\u202f" in text or "\u00a0" in text for text in raw)  # references keep them
    cleaned = [text.decode() for text in train["fr"][:2000]]
    assert not any("\u202f" in text or "\u00a0" in text for text in cleaned)


@pytest.mark.slow
def test_a_second_independent_preparation_gives_identical_splits(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    again = load_splits()
    for name in SPLITS:
        for feature, column in splits[name].items():
            assert np.array_equal(column, again[name][feature])
