"""English–French sentence pairs (Tatoeba via manythings.org) as a TFDS dataset,
prepared offline from the shipped zip.

>>> import tensorflow_datasets as tfds, zoo.data
>>> test = tfds.load("fra_eng", split="test", data_dir=zoo.data.data_dir())
>>> sorted(next(iter(test)))
['en', 'en_raw', 'fr', 'fr_raw', 'id']
"""

from __future__ import annotations

import zipfile

import numpy as np
import tensorflow_datasets as tfds

from zoo.data.errors import DataError
from zoo.data.shipped_files import shipped_file
from zoo.data.splits import SPLITS, hash_split
from zoo.data.user_files import parse_pairs
from zoo.registry import datasets
from zoo.text.cleaning import clean_translation

SOURCE_FILE = "fra-eng.zip"
MEMBER = "fra-eng/fra.txt"
# Fixed: part of the dataset's version, so every preparation gives the same splits.
SPLIT_SEED = 0


class FraEng(tfds.core.GeneratorBasedBuilder):
    """167,130 English–French pairs from the Tatoeba Project (CC BY 2.0, attribution:
    "www.manythings.org/anki and tatoeba.org").

    Features: ``id`` (the 1-based line in ``fra.txt``), ``en`` and ``fr`` cleaned as in the
    chapter, ``en_raw`` and ``fr_raw`` as written (``fr_raw`` is the sacrebleu reference).
    Splits: about 90 / 5 / 5 % by a hash of (seed 0, cleaned English sentence), so all
    translations of one English sentence fall in the same split and test never leaks
    into train.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Grouped hash split by cleaned English sentence, seed 0."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Scalar(dtype=np.int64),
                    "en": tfds.features.Text(),
                    "fr": tfds.features.Text(),
                    "en_raw": tfds.features.Text(),
                    "fr_raw": tfds.features.Text(),
                }
            ),
            homepage="https://www.manythings.org/anki/",
            license="CC BY 2.0; attribution: www.manythings.org/anki and tatoeba.org",
        )

    def _split_generators(self, dl_manager):
        # The shipped file is read directly; dl_manager is never asked to download.
        path = shipped_file(SOURCE_FILE)
        with zipfile.ZipFile(path) as archive:
            data = archive.read(MEMBER)
        pairs, report = parse_pairs(data, source_name=f"{path}:{MEMBER}")
        if report.num_malformed:
            raise DataError(f"{path}:{MEMBER}: {report.summary()}")
        examples = {name: [] for name in SPLITS}
        for pair in pairs:
            english = clean_translation(pair.source)
            example = {
                "id": pair.line_number,
                "en": english,
                "fr": clean_translation(pair.target),
                "en_raw": pair.source,
                "fr_raw": pair.target,
            }
            examples[hash_split(english, seed=SPLIT_SEED)].append(example)
        return {name: self._generate_examples(split) for name, split in examples.items()}

    def _generate_examples(self, examples: list[dict]):
        for example in examples:
            yield example["id"], example


datasets.add(FraEng.name, FraEng)
