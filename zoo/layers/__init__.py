"""The registered layers: the chapter's recurrent cells, sequence layers and their stacks,
and the attention of its seq2seq decoder."""

from zoo.layers.additive_attention import AdditiveAttention
from zoo.layers.bidirectional import Bidirectional
from zoo.layers.deep_rnn import DeepRNN
from zoo.layers.gru import GRU
from zoo.layers.gru_cell import GRUCell
from zoo.layers.lstm import LSTM
from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.mlp import MLP
from zoo.layers.recurrent import Recurrent
from zoo.layers.recurrent_cell import RecurrentCell
from zoo.layers.rnn import RNN
from zoo.layers.rnn_cell import RNNCell

__all__ = [
    "RNNCell",
    "GRUCell",
    "LSTMCell",
    "RecurrentCell",
    "Recurrent",
    "RNN",
    "GRU",
    "LSTM",
    "DeepRNN",
    "Bidirectional",
    "MLP",
    "AdditiveAttention",
]
