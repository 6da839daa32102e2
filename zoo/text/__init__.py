"""Text preparation shared by training data and inference: the chapter's cleaning,
tokenization and the token ↔ id vocabulary. Pure Python and NumPy (no TensorFlow), so an
exported model runs from it on a device or in a process without TensorFlow."""

from zoo.text.cleaning import clean_time_machine, clean_translation, tokenize
from zoo.text.vocab import Vocab

__all__ = ["Vocab", "clean_time_machine", "clean_translation", "tokenize"]
