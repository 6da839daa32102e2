"""The Time Machine as a TFDS dataset, prepared offline from the shipped text.

>>> import tensorflow_datasets as tfds, zoo.data
>>> splits = tfds.load("time_machine", data_dir=zoo.data.data_dir(), batch_size=-1)
>>> splits["train"]["text"].shape
TensorShape([1])
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from zoo.data.shipped_files import shipped_file
from zoo.data.splits import contiguous_split
from zoo.registry import datasets
from zoo.text.cleaning import clean_time_machine

SOURCE_FILE = "timemachine.txt"


class TimeMachine(tfds.core.GeneratorBasedBuilder):
    """H. G. Wells, *The Time Machine* (public domain), cleaned as in the chapter (every
    run of non-letters becomes one space, lower case: 173,428 characters) and cut into
    contiguous train / validation / test parts of 90 / 5 / 5 % of the characters.

    Each split is ONE example ``{"text": Text}``, so that TFDS's shuffling of examples
    cannot reorder the text.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Contiguous 90/5/5 % character split of the cleaned text."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            homepage="https://www.gutenberg.org/ebooks/35",
            license="Public domain (Project Gutenberg eBook #35)",
        )

    def _split_generators(self, dl_manager):
        # The shipped file is read directly; dl_manager is never asked to download.
        text = shipped_file(SOURCE_FILE).read_text(encoding="utf-8")
        parts = contiguous_split(clean_time_machine(text))
        return {name: self._generate_examples(name, part) for name, part in parts.items()}

    def _generate_examples(self, split_name: str, text: str):
        yield split_name, {"text": text}


datasets.add(TimeMachine.name, TimeMachine)
