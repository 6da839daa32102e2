"""Shared by the tests of ``zoo.data`` (it holds no tests): the shipped datasets prepared
once per test session into a temporary TFDS data directory, and a context that points
``zoo.data.data_dir()`` at it.

A module rather than a conftest fixture so that every ``test_data_*.py`` file, run alone
or together, shares one preparation of fra-eng (the slow one) per process.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest

DATA_DIR_ENV = "ZOO_DATA_DIR"


@functools.cache
def prepared_data_dir() -> Path:
    """A TFDS data directory where ``time_machine`` and ``fra_eng`` are prepared."""
    import tensorflow_datasets as tfds

    import zoo.data  # noqa: F401  (registers the builders)

    directory = Path(tempfile.mkdtemp(prefix="zoo-test-data-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    tfds.disable_progress_bar()
    for name in ("time_machine", "fra_eng"):
        tfds.builder(name, data_dir=str(directory)).download_and_prepare()
    return directory


@pytest.fixture(scope="module")
def data_dir():
    """Points ``ZOO_DATA_DIR`` at the session's prepared data for one test module."""
    with pytest.MonkeyPatch.context() as patch:
        directory = prepared_data_dir()
        patch.setenv(DATA_DIR_ENV, str(directory))
        yield directory
