"""The zoo's data: the chapter's corpora as offline TFDS datasets (``time_machine``,
``fra_eng``), the sine data of the sequence-model section, users' own files, and the
tokenization, vocabulary and batching that turn them into ``tf.data`` pipelines.

Importing this package registers the TFDS builders with TFDS and the datasets with
``zoo.registry.datasets``.
"""

from zoo.data import fra_eng, sine, time_machine, word_corpus  # noqa: F401  (register the datasets)
from zoo.data.data_directory import data_dir
from zoo.data.descriptions import describe, list_datasets
from zoo.data.errors import DataError
from zoo.data.language_modeling import language_model_data
from zoo.data.translation import translation_data
from zoo.text.vocab import Vocab

__all__ = [
    "DataError",
    "Vocab",
    "data_dir",
    "describe",
    "language_model_data",
    "list_datasets",
    "translation_data",
]
