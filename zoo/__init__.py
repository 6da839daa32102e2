"""zoo: a Keras 3 / TensorFlow model zoo for recurrent sequence models, with a plugin registry.

Importing ``zoo`` is cheap: TensorFlow loads only when layers, data or models are used.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) is noise for CLI users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def load(name_or_path):
    """A trained model by pretrained-model name (``zoo models list``) or by the path of a
    run directory, verified and loaded as the Keras model of its task, with
    ``.generate(prefix, length=...)`` for a language model, ``.translate(sentences,
    beam=...)`` for a translator and ``.preset`` (its recipe, task and vocabularies).
    An export folder loads through its TF-free runtime (``load_export``). TensorFlow is
    imported on the first call for anything but an export."""
    from zoo.pretrained.pretrained_model import load as load_model

    return load_model(name_or_path)


def load_export(folder, quantization=None):
    """An export folder's TFLite file (``quantization``: which one; default the first
    listed) on LiteRT, without TensorFlow: a ``TextGenerator``, a
    ``SentenceTranslator`` or what its task's ``export_runtime`` gives."""
    from zoo.export.litert import load_export as load_folder
    from zoo.pretrained.resolver import resolve_model  # a shipped model's export: verified

    return load_folder(resolve_model(str(folder)).path, quantization)


def evaluate(name_or_path, split=None, beam=None, alpha=None) -> dict:
    """The metrics of a trained model on ``split`` (default: its recipe's), as ``zoo
    evaluate`` gives and writes them."""
    from zoo.pipeline import evaluate_run

    return evaluate_run(str(name_or_path), (split,) if split else None, beam, alpha)
