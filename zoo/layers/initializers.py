"""Initializers a recipe names: Keras' own, and two that PyTorch's layers start from.

Keras starts an embedding at U(±0.05) and its products at Glorot-uniform (orthogonal for
recurrent kernels); PyTorch starts ``nn.Embedding`` at N(0, 1) and ``nn.Linear`` /
``nn.LSTM`` weights at U(±1/√fan_in). Trained with Adam, which moves each weight by
about the learning rate a step whatever its scale, a word-level language model started
from Keras' tiny embeddings hardly uses its inputs for epochs
(benchmarks/learning_parity.py: validation perplexity 315 → 296 over three epochs,
against 81 → 51 from PyTorch's initializers).

>>> get("fan_in_uniform").get_config()["scale"] == 1 / 3
True
"""

import keras

NAMED = {
    # N(0, 1), as nn.Embedding
    "unit_normal": lambda: keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
    # U(±1/√fan_in), as nn.Linear's and (inputs as wide as the units) nn.LSTM's weights
    "fan_in_uniform": lambda: keras.initializers.VarianceScaling(
        scale=1 / 3, mode="fan_in", distribution="uniform"
    ),
}


def get(identifier):
    """The initializer ``identifier`` names: one of ``NAMED``, or anything
    ``keras.initializers.get`` takes (a name such as "glorot_uniform", a config, an
    initializer)."""
    if isinstance(identifier, str) and identifier in NAMED:
        return NAMED[identifier]()
    return keras.initializers.get(identifier)
