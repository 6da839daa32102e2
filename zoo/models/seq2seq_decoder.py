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
        P(y_t | y_{<t}, c) = softmax(o_t W + b),   o_t = s^L_t

    or, with ``deep_output``, o_t = tanh([s^L_t; c_t] W_o + b_o) (Bahdanau et al.'s deep
    output; Luong et al.'s attentional hidden state), so the context reaches the
    prediction directly and not only through the recurrence.

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
        deep_output: predict from tanh([s^L_t; c_t] W_o + b_o), with the dropout
            applied to it, rather than from s^L_t. Defaults to False.
        embedding_dropout: dropout on embed(y_{t-1}) while training. Defaults to 0.
        tie_embeddings: the output layer reuses the target embedding E, logits =
            o_t E^T + b (Press & Wolf, 2017), so a word's input and output vectors are
            one; needs ``units == embedding_dim``. Defaults to False.

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
        deep_output=False,
        embedding_dropout=0.0,
        tie_embeddings=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tie_embeddings = bool(tie_embeddings)
        if self.tie_embeddings and units != embedding_dim:
            raise ValueError(
                f"tie_embeddings needs the decoder's units ({units}) to equal the "
                f"embedding_dim ({embedding_dim})"
            )
        self.embedding_dropout = float(embedding_dropout)
        self.embedding_dropout_layer = (
            keras.layers.Dropout(self.embedding_dropout) if self.embedding_dropout else None
        )
        self.deep_output = bool(deep_output)
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
        self.output_projection = (
            keras.layers.Dense(units, activation="tanh", name="output_projection")
            if deep_output
            else None
        )
        self.head = None if self.tie_embeddings else keras.layers.Dense(vocab_size, name="head")

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
        if self.output_projection is not None:
            context_units = memory_units if self.attention_layer is not None else self.units
            self.output_projection.build((None, self.units + context_units))
        if self.head is None:
            self.head_bias = self.add_weight(
                shape=(self.vocab_size,), initializer="zeros", name="head_bias"
            )
        else:
            self.head.build((None, self.units))

    def output_weights(self):
        """(W [vocab, units], b [vocab]) of the output layer, logits = o W^T + b: the
        head's, or the target embedding's with ``tie_embeddings``."""
        if self.head is None:
            return self.embedding.embeddings, self.head_bias
        return ops.transpose(self.head.kernel), self.head.bias

    def logits(self, outputs):
        """o_t [..., units] → logits [..., vocab]."""
        if self.head is not None:
            return self.head(outputs)
        return ops.matmul(outputs, ops.transpose(self.embedding.embeddings)) + self.head_bias

    def project_embedded(self, embedded):
        """embed(y) W_e + b: the part of the first cell's input projection that comes
        from the previous token. Under teacher forcing every y_{t-1} is known ahead, so
        ``call`` projects the whole target sequence in one product outside the loop.
        """
        cell = self.cells[0]
        projected = ops.matmul(embedded, cell.kernel[: self.embedding_dim])
        bias = cell.input_bias()
        return projected if bias is None else projected + bias

    def project_context(self, context):
        """c W_c: the rest of the first cell's input projection, [c; embed(y)] split."""
        return ops.matmul(context, self.cells[0].kernel[self.embedding_dim :])

    def memory_keys(self, memory):
        """The attention's projected keys W_k m, computed once per source sentence."""
        if self.attention_layer is None:
            return None
        return self.attention_layer.project_keys(memory)

    def cell_step(self, projected, states, memory, keys, memory_mask, training=None):
        """One step of the stack → (s^L_t, states), or ([s^L_t; c_t], states) with
        attention and ``deep_output`` (``output`` makes o_t of either).

        ``projected`` is embed(y_{t-1}) W_e + b, plus c W_c when the context is fixed
        (no attention); with attention c_t is read here from s^L_{t-1}.
        """
        if self.attention_layer is not None:
            query = states[self.top_state_index][:, None, :]
            context = self.attention_layer.attend(
                query, keys, memory, key_mask=memory_mask, training=training
            )[:, 0, :]
            projected = projected + self.project_context(context)
        new_states, offset = [], 0
        for index, cell in enumerate(self.cells):
            width = len(cell.state_size)
            cell_states = states[offset : offset + width]
            if index == 0:
                hidden, cell_states = cell.transition(projected, cell_states)
            else:
                if self.dropout_layer is not None:
                    hidden = self.dropout_layer(hidden, training=training)
                hidden, cell_states = cell(hidden, cell_states)
            new_states += cell_states
            offset += width
        if self.deep_output and self.attention_layer is not None:
            return ops.concatenate([hidden, context], axis=-1), new_states
        return hidden, new_states

    def output(self, top, fixed_context=None, training=None):
        """o_t from what ``cell_step`` returned, [batch, (time,) width] → [..., units]:
        s^L_t itself, or tanh([s^L_t; c_t] W_o + b_o) with ``deep_output``. Outside the
        recurrence, so under teacher forcing it is one product for the whole sequence."""
        if not self.deep_output:
            return top
        if self.attention_layer is None:  # c_t is the fixed context
            context = fixed_context if len(top.shape) == 2 else fixed_context[:, None, :]
            top = ops.concatenate([top, ops.broadcast_to(context, ops.shape(top))], axis=-1)
        outputs = self.output_projection(top)
        if self.dropout_layer is not None:
            outputs = self.dropout_layer(outputs, training=training)
        return outputs

    def _projected_inputs(self, tokens, memory, fixed_context, training=None):
        """(embed(y) W_e + b [+ c W_c without attention], the attention's keys)."""
        embedded = self.embedding(tokens)
        if self.embedding_dropout_layer is not None:
            embedded = self.embedding_dropout_layer(embedded, training=training)
        projected = self.project_embedded(embedded)
        if self.attention_layer is None:
            context = self.project_context(fixed_context)
            if len(projected.shape) == 3:
                context = context[:, None, :]
            return projected + context, None
        return projected, self.memory_keys(memory)

    def call(
        self,
        tokens,
        states,
        memory,
        memory_mask=None,
        fixed_context=None,
        training=None,
        logits=True,
    ):
        """Teacher forcing over a whole target sequence → (logits, final states); with
        ``logits=False`` the outputs o_t [batch, time, units] instead of the logits."""
        projected, keys = self._projected_inputs(tokens, memory, fixed_context, training)

        def step(projected_t, step_states):
            return self.cell_step(projected_t, step_states, memory, keys, memory_mask, training)

        top, final_states = scan_over_time(step, projected, list(states))
        outputs = self.output(top, fixed_context, training)
        return (self.logits(outputs) if logits else outputs), final_states

    def step(self, tokens, states, memory, memory_mask=None, fixed_context=None, keys=None):
        """One token per sentence: tokens [batch] → (log-probabilities [batch, vocab], states).

        ``keys`` are ``memory_keys(memory)``, computed once per sentence by a decoding
        loop; without them they are projected again at every step.
        """
        projected, step_keys = self._projected_inputs(tokens, memory, fixed_context)
        top, new_states = self.cell_step(
            projected, list(states), memory, step_keys if keys is None else keys, memory_mask
        )
        outputs = self.output(top, fixed_context)
        return ops.log_softmax(self.logits(outputs), axis=-1), new_states

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
                "deep_output": self.deep_output,
                "embedding_dropout": self.embedding_dropout,
                "tie_embeddings": self.tie_embeddings,
            }
        )
        return config
