"""zoo: a Keras 3 / TensorFlow model zoo for recurrent sequence models, with a plugin registry.

Importing ``zoo`` is cheap: TensorFlow loads only when layers, data or models are used.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) is noise for CLI users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
