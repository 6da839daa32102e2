"""Task models assembled from registered layers: the backbone returns states, the
task adds the head (and, in decoding, generation)."""

from zoo.models.autoregressive_model import AutoregressiveModel
from zoo.models.language_model import LanguageModel

__all__ = ["AutoregressiveModel", "LanguageModel"]
