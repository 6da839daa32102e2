"""Task models assembled from registered layers: the backbone returns states, the
task adds the head (and, in decoding, generation)."""

from zoo.models.autoregressive_model import AutoregressiveModel
from zoo.models.language_model import LanguageModel
from zoo.models.seq2seq_decoder import Seq2SeqDecoder
from zoo.models.seq2seq_encoder import Seq2SeqEncoder
from zoo.models.translator import Translator

__all__ = ["AutoregressiveModel", "LanguageModel", "Seq2SeqDecoder", "Seq2SeqEncoder", "Translator"]
