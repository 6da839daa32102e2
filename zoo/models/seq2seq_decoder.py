"""The decoder of the encoder–decoder architecture, with or without attention."""

import keras
from keras import ops

from zoo import registry
from zoo.layers.recurrent import scan_over_time


@keras.saving.register_keras_serializable(package="zoo")
class Seq2SeqDecoder(keras.layers.Layer):
    """A unidirectional stack of registered cells that predicts y_t from y_{t-1}, its
    state and a context c_t:

        s^j_t = f_j(s^j_{t-1}, s^{j-1}_t),   s^0_t = [embed(y_{t-1}); c_t]
        P(y_t | y_{<t}, c) = softmax(s^L_t W + b)

    Without attention c_t is the encoder's final top-layer state for every t (the
    chapter's seq2seq); with attention (Bahdanau) c_t = attention(query = s^L_{t-1},
    keys = values = encoder outputs), padding masked. Training feeds the true
    y_{t-1} (teacher forcing); ``step`` runs one token for decoding.

    Args:
        vocab_size: target vocabulary size.
        embedding_dim: embedding size.
        units: hidden size of every cell.
        cell: registered cell name. Defaults to "gru_cell".
        num_layers: L. Defaults to 2.
        dropout: dropout between layers during training. Defaults to 0.
        attention: recipe entry of an attention layer, or None. Defaults to None.

    Shapes: tokens [batch, time], states as ``state_size``, memory [batch, src_time,
    memory_units], memory_mask [batch, src_time] → logits [batch, time, vocab_size].
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        units,
        cell="gru_cell",
        num_layers=2,
        dropout=0.0,
        attention=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.dropout = dropout
        self.attention = dict(attention) if attention else None
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.cells = [
            registry.build_layer({"name": cell, "units": units}, name=f"cell_{index}")
            for index in range(num_layers)
        ]
        self.attention_layer = (
            registry.build_layer(self.attention, name="attention") if attention else None
        )
        self.dropout_layer = keras.layers.Dropout(dropout) if dropout else None
        self.head = keras.layers.Dense(vocab_size, name="head")

    @property
    def state_size(self):
        return [size for cell in self.cells for size in cell.state_size]

    @property
    def top_state_index(self):
        """Index of s^L (the top cell's h) in the flat state list."""
        return len(self.state_size) - len(self.cells[-1].state_size)

    def build(self, tokens_shape, memory_shape=None):
        self.embedding.build(tokens_shape)
        memory_units = memory_shape[-1] if memory_shape else self.units
        # c_t is an attention readout of the memory, or the decoder's initial top state.
        width = self.embedding_dim + (
            memory_units if self.attention_layer is not None else self.units
        )
        for cell in self.cells:
            cell.build((None, width))
            width = self.units
        if self.attention_layer is not None:
            self.attention_layer.build(
                (None, 1, self.units), (None, None, memory_units), (None, None, memory_units)
            )
        self.head.build((None, self.units))

    def context(self, states, memory, memory_mask, fixed_context, training=None):
        if self.attention_layer is None:
            return fixed_context
        query = states[self.top_state_index][:, None, :]
        return self.attention_layer(query, memory, memory, key_mask=memory_mask, training=training)[
            :, 0, :
        ]

    def cell_step(self, embedded, states, memory, memory_mask, fixed_context, training=None):
        """One step of the stack: embedded y_{t-1} [batch, embedding_dim] → (s^L_t, states)."""
        hidden = ops.concatenate(
            [embedded, self.context(states, memory, memory_mask, fixed_context, training)], axis=-1
        )
        new_states, offset = [], 0
        for index, cell in enumerate(self.cells):
            width = len(cell.state_size)
            if index and self.dropout_layer is not None:
                hidden = self.dropout_layer(hidden, training=training)
            hidden, cell_states = cell(hidden, states[offset : offset + width])
            new_states += cell_states
            offset += width
        return hidden, new_states

    def call(self, tokens, states, memory, memory_mask=None, fixed_context=None, training=None):
        """Teacher forcing over a whole target sequence → (logits, final states)."""

        def step(embedded, step_states):
            return self.cell_step(
                embedded, step_states, memory, memory_mask, fixed_context, training
            )

        hidden, final_states = scan_over_time(step, self.embedding(tokens), list(states))
        return self.head(hidden), final_states

    def step(self, tokens, states, memory, memory_mask=None, fixed_context=None):
        """One token per sentence: tokens [batch] → (log-probabilities [batch, vocab], states)."""
        hidden, new_states = self.cell_step(
            self.embedding(tokens), list(states), memory, memory_mask, fixed_context
        )
        return ops.log_softmax(self.head(hidden), axis=-1), new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "attention": self.attention,
            }
        )
        return config
