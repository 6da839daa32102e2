"""Keeps TensorFlow's start-up lines off the terminal of the ``zoo`` command.

TensorFlow's C++ libraries log while they load ("Could not find cuda drivers", the
oneDNN notice, "failed call to cuInit", "All log messages before
absl::InitializeLog() ...") straight to file descriptor 2, before any setting such as
``TF_CPP_MIN_LOG_LEVEL`` is read. So the first ``import tensorflow`` of a command runs
with descriptor 2 sent to a temporary file, and what it caught is written back
without those lines: any other message (a real import error) still reaches the user.
Python-side chatter (tf.function retracing, absl warnings) is lowered to errors, unless
the user configured those loggers. Nothing here runs for commands that never import
TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile

ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # C++ INFO and WARNING lines, once logging is set up
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|cudart_stub\.cc|cuda_executor\.cc|cuda_platform\.cc|cuda_dnn\.cc|cuda_fft\.cc"
    r"|cuda_blas\.cc|port\.cc:\d+\] oneDNN custom operations|cpu_feature_guard\.cc"
    r"|Could not find cuda drivers|failed call to cuInit|Unable to register cu(DNN|FFT|BLAS)"
    r"|TF-TRT Warning|computation_placer\.cc"
)
QUIET_LOGGERS = ("tensorflow", "absl", "h5py")


def _write_back(caught: bytes) -> None:
    lines = caught.decode("utf-8", "replace").splitlines(keepends=True)
    kept = "".join(line for line in lines if not NOISE.search(line))
    if kept:
        sys.stderr.write(kept)
        sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                self.loader.exec_module(module)
                # the first device query probes CUDA ("failed call to cuInit"): do it here
                module.config.list_physical_devices()
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                _write_back(caught.read())
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.ERROR)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Sets TensorFlow's logging variables the user has not set, and makes the first
    ``import tensorflow`` keep its start-up lines to itself."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietFinder) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietFinder())
