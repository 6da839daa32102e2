"""Where the TFDS datasets of the zoo are prepared and loaded from."""

from __future__ import annotations

import os

from zoo.data.errors import DataError

DATA_DIR_ENV = "ZOO_DATA_DIR"


def data_dir() -> str:
    """The TFDS data directory: ``$ZOO_DATA_DIR`` if set, else the TFDS default
    (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). Read at every call, so a test can
    point it elsewhere with ``monkeypatch.setenv``."""
    from tensorflow_datasets.core import constants

    chosen = os.environ.get(DATA_DIR_ENV)
    if chosen and os.path.exists(chosen) and not os.path.isdir(chosen):
        raise DataError(f"{DATA_DIR_ENV}={chosen}: not a directory")
    return chosen or constants.get_default_data_dir()
