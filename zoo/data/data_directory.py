"""Where the TFDS datasets of the zoo are prepared and loaded from."""

from __future__ import annotations

import os

DATA_DIR_ENV = "ZOO_DATA_DIR"


def data_dir() -> str:
    """The TFDS data directory: ``$ZOO_DATA_DIR`` if set, else the TFDS default
    (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). Read at every call, so a test can
    point it elsewhere with ``monkeypatch.setenv``."""
    from tensorflow_datasets.core import constants

    return os.environ.get(DATA_DIR_ENV) or constants.get_default_data_dir()
