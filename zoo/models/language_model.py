"""The RNN language model: tokens → recurrent backbone → next-token logits."""

import keras
import tensorflow as tf
from keras import ops

from zoo import registry
from zoo.layers import initializers
from zoo.layers.embedding_dropout import EmbeddingDropout
from zoo.layers.locked_dropout import LockedDropout
from zoo.models.presets import PresetModel
from zoo.training.distribute import track_loss


@keras.saving.register_keras_serializable(package="zoo")
class LanguageModel(PresetModel, keras.Model):
    """A language model P(x_t | x_{t-1}, ..., x_1) built from registered sequence layers.

    Tokens are one-hot encoded as in the chapter (``embedding_dim=0``) or embedded;
    the backbone is a stack of registered sequence layers (``rnn``, ``gru``, ``lstm``,
    ``deep_rnn``, ...), each run with its state carried in and out; a dense head maps
    the top hidden state to logits over the vocabulary, O_t = H_t W_hq + b_q, or with
    ``tie_embeddings`` O_t = H_t Eᵀ + b_q through the embedding E itself (Press & Wolf
    2017; Inan et al. 2017), as the translator's decoder ties its own.

    ``forward`` takes and returns the flat list of every layer's state, so the same
    model trains on whole sequences and generates (or streams on a phone) one token
    at a time.

    Args:
        vocab_size: number of tokens.
        layers: recipe entries of the backbone, ``[{"name": "lstm", "units": 256}]``.
        embedding_dim: 0 for one-hot inputs, else the embedding size. Defaults to 0.
        dropout: dropout on the backbone's outputs during training. Defaults to 0.
        embedding_initializer: initializer of the embedding, a name of
            ``zoo.layers.initializers`` or Keras'. Defaults to "uniform", U(±0.05).
        head_initializer: initializer of W_hq. Defaults to "glorot_uniform".
        tie_embeddings: the output layer is the embedding E transposed, one matrix for a
            word's input and output vectors; needs an embedding as wide as the last
            layer's outputs. Defaults to False.
        embedding_dropout: during training, the share of word types whose embedding is
            zeroed wherever they occur in a batch (``EmbeddingDropout``). Defaults to 0.
        locked_dropout: during training, dropout on each layer's output sequence with one
            mask per sequence for every step (``LockedDropout``): between the layers and
            before the head. A layer's own ``dropout`` does the same to its inputs, so the
            first layer's drops the embedded sequence. Defaults to 0.

    Shapes: tokens [batch, time] int → logits [batch, time, vocab_size].
    """

    def __init__(
        self,
        vocab_size,
        layers,
        embedding_dim=0,
        dropout=0.0,
        embedding_initializer="uniform",
        head_initializer="glorot_uniform",
        tie_embeddings=False,
        embedding_dropout=0.0,
        locked_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.layer_specs = [dict(spec) for spec in layers]
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.embedding_initializer = embedding_initializer
        self.head_initializer = head_initializer
        self.tie_embeddings = bool(tie_embeddings)
        self.embedding_dropout = float(embedding_dropout)
        self.locked_dropout = float(locked_dropout)
        self.embedding = (
            keras.layers.Embedding(
                vocab_size,
                embedding_dim,
                embeddings_initializer=initializers.get(embedding_initializer),
                name="embedding",
            )
            if embedding_dim
            else None
        )
        self.backbone = [
            registry.build_layer(spec, return_sequences=True, return_state=True)
            for spec in self.layer_specs
        ]
        for spec, layer in zip(self.layer_specs, self.backbone, strict=True):
            if not hasattr(layer, "state_size"):
                raise ValueError(
                    f"layer '{spec['name']}' is not a sequence layer; a language model needs one"
                )
        self.dropout_layer = keras.layers.Dropout(dropout) if dropout else None
        self.embedding_dropout_layer = (
            EmbeddingDropout(vocab_size, embedding_dropout, name="embedding_dropout")
            if embedding_dropout
            else None
        )
        self.locked_dropout_layer = (
            LockedDropout(locked_dropout, name="locked_dropout") if locked_dropout else None
        )
        if self.tie_embeddings:
            top_units = self.backbone[-1].output_units
            if not embedding_dim or top_units != embedding_dim:
                raise ValueError(
                    f"tie_embeddings needs embedding_dim ({embedding_dim}) equal to the last "
                    f"layer's units ({top_units})"
                )
            self.head = None
            self.head_bias = self.add_weight(
                shape=(vocab_size,), initializer="zeros", name="head_bias"
            )
        else:
            self.head = keras.layers.Dense(
                vocab_size, kernel_initializer=initializers.get(head_initializer), name="head"
            )
        self._carried = None  # see carry_states

    @property
    def state_sizes(self):
        """The size of each tensor of the flat state list."""
        return [size for layer in self.backbone for size in layer.state_size]

    def initial_state(self, batch_size):
        return [state for layer in self.backbone for state in layer.get_initial_state(batch_size)]

    def embed(self, tokens):
        if self.embedding is None:
            return ops.one_hot(tokens, self.vocab_size, dtype=self.compute_dtype)
        return self.embedding(tokens)

    def logits(self, hidden):
        """H [..., units] → O [..., vocab]: the head, or the tied embedding."""
        if self.head is not None:
            return self.head(hidden)
        return ops.matmul(hidden, ops.transpose(self.embedding.embeddings)) + self.head_bias

    def forward(self, tokens, states=None, training=None):
        """tokens [batch, time], flat states → (logits [batch, time, vocab], states)."""
        hidden, final_states, offset = self.embed(tokens), [], 0
        if self.embedding_dropout_layer is not None:
            hidden = self.embedding_dropout_layer(hidden, tokens, training=training)
        for layer in self.backbone:
            width = len(layer.state_size)
            layer_states = None if states is None else list(states[offset : offset + width])
            hidden, *new_states = layer(hidden, initial_state=layer_states, training=training)
            if self.locked_dropout_layer is not None:
                hidden = self.locked_dropout_layer(hidden, training=training)
            if self.dropout_layer is not None:
                hidden = self.dropout_layer(hidden, training=training)
            final_states += new_states
            offset += width
        return self.logits(hidden), final_states

    def call(self, tokens, training=None):
        return self.forward(tokens, training=training)[0]

    def step(self, tokens, states):
        """One token per row, for generation and streaming: tokens [batch] int and the
        flat state list → (logits [batch, vocab], new states). The same function as
        ``forward`` over one step, without the time loop, so it exports to TFLite as a
        handful of matrix products (``zoo.export``)."""
        hidden, new_states, offset = self.embed(tokens), [], 0
        for layer in self.backbone:
            width = len(layer.state_size)
            hidden, layer_states = layer.step(hidden, list(states[offset : offset + width]))
            new_states += layer_states
            offset += width
        return self.logits(hidden), new_states

    def carry_states(self, batch_size):
        """Trains with the state carried from each batch into the next, as the chapter
        does with sequential partitioning: row r of batch b + 1 continues row r of batch
        b, so its initial state is batch b's final state, detached from the gradient
        (truncated backpropagation through time). ``reset_carried_states`` zeroes it at
        the start of each epoch. Without this call training starts each batch from zeros.

        Under a ``tf.distribute`` strategy (call it in its scope) each replica carries
        the rows of its own part of the batch: ``batch_size`` is the global batch, and
        replica r always reads the r-th part of it, so its rows stay contiguous.
        """
        strategy = tf.distribute.get_strategy()
        replicas = strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise ValueError(
                f"data.batch_size {batch_size} does not split evenly over {replicas} replicas, "
                "which the sequential sampler needs (each keeps its rows)"
            )
        local = {"synchronization": tf.VariableSynchronization.ON_READ} if replicas > 1 else {}
        self._carried = _CarriedStates(
            [
                tf.Variable(
                    tf.zeros((batch_size // replicas, size)),
                    trainable=False,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    **local,
                )
                for size in self.state_sizes
            ]
        )

    def reset_carried_states(self):
        for variable in self._carried.variables if self._carried else ():
            variable.assign(tf.zeros(variable.shape))

    def restore_carried_states(self, states) -> None:
        """Sets the carried states to ``states`` (``carried_states()`` of a checkpoint
        taken within an epoch); one of other shapes is left at zeros."""
        variables = list(self._carried.variables) if self._carried else []
        if len(variables) != len(states):
            return
        pairs = list(zip(variables, states, strict=True))
        if all(tuple(variable.shape) == tuple(state.shape) for variable, state in pairs):
            for variable, state in pairs:
                variable.assign(state)

    def carried_states(self):
        """The states the next training batch starts from (after ``carry_states``)."""
        if self._carried is None:
            return None
        return [variable.numpy() for variable in self._carried.variables]

    def train_step(self, data):
        carried = self._carried
        if carried is None:
            return super().train_step(data)
        tokens, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            logits, new_states = self.forward(
                tokens, [tf.identity(variable) for variable in carried.variables], training=True
            )
            # under tf.distribute, Keras' loss is this replica's share (1 / replicas);
            # the tracker keeps the whole (the logs average it over the replicas)
            loss = self.compute_loss(x=tokens, y=targets, y_pred=logits, training=True)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        for variable, state in zip(carried.variables, new_states, strict=True):
            variable.assign(tf.stop_gradient(state))
        track_loss(self, loss, batch_size=tf.shape(tokens)[0])
        return self.compute_metrics(tokens, targets, logits)

    def generate(
        self,
        prefix: str,
        length: int = 50,
        temperature: float = 1.0,
        greedy: bool = False,
        seed: int | None = None,
    ) -> str:
        """``prefix`` continued by ``length`` tokens, sampled at ``temperature`` (or the
        most likely ones with ``greedy``), as ``zoo generate`` does; needs the model's
        ``preset`` (``zoo.load`` or ``from_preset``) for its vocabulary and text format."""
        generator = self.session(
            "generate",
            lambda preset: preset.task.generator(
                self, preset.vocabularies["vocab.txt"], preset.recipe
            ),
        )
        return generator.generate(prefix, length, temperature, greedy, seed)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "layers": self.layer_specs,
                "embedding_dim": self.embedding_dim,
                "dropout": self.dropout,
                "embedding_initializer": self.embedding_initializer,
                "head_initializer": self.head_initializer,
                "tie_embeddings": self.tie_embeddings,
                "embedding_dropout": self.embedding_dropout,
                "locked_dropout": self.locked_dropout,
            }
        )
        return config


class _CarriedStates:
    """A plain holder, so that Keras and SavedModel do not take the carried states (sized
    for one training batch) for weights of the model."""

    def __init__(self, variables):
        self.variables = variables
