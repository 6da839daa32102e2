"""zoo: a Keras 3 / TensorFlow model zoo for recurrent sequence models, with a plugin registry.

Importing ``zoo`` is cheap: TensorFlow loads only when layers, data or models are used.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) is noise for CLI users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def load(name_or_path):
    """A trained model by pretrained-model name (``zoo models list``) or by the path of a
    run directory, verified and loaded: ``.generate(prefix, length=...)`` for a language
    model, ``.translate(sentences, beam=...)`` for a translator, ``.evaluate(split)``,
    ``.model`` (Keras), ``.recipe``. TensorFlow is imported on the first call."""
    from zoo.pretrained.pretrained_model import load as load_model

    return load_model(name_or_path)
