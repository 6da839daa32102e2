import numpy as np
import tensorflow_datasets as tfds
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data.tfds_columns import split_columns


def test_split_columns_reads_what_tfds_load_reads(data_dir):  # noqa: F811
    loaded = tfds.as_numpy(
        tfds.load("fra_eng", split="test", data_dir=str(data_dir), batch_size=-1)
    )
    columns = split_columns("fra_eng", "test")
    assert sorted(columns) == sorted(loaded) == ["en", "en_raw", "fr", "fr_raw", "id"]
    by_line, loaded_by_line = np.argsort(columns["id"]), np.argsort(loaded["id"])
    for feature, column in columns.items():
        assert np.array_equal(column[by_line], loaded[feature][loaded_by_line])


def test_split_columns_of_the_time_machine_is_its_one_text(data_dir):  # noqa: F811
    loaded = tfds.as_numpy(
        tfds.load("time_machine", split="validation", data_dir=str(data_dir), batch_size=-1)
    )
    assert split_columns("time_machine", "validation")["text"].tolist() == loaded["text"].tolist()
