"""The encoder–decoder translator: seq2seq with an optional attention decoder."""

import keras
import tensorflow as tf
from keras import ops

from zoo.models.presets import PresetModel
from zoo.models.seq2seq_decoder import Seq2SeqDecoder
from zoo.models.seq2seq_encoder import Seq2SeqEncoder
from zoo.training.distribute import global_token_count, replicas_in_sync, track_loss


@keras.saving.register_keras_serializable(package="zoo")
class Translator(PresetModel, keras.Model):
    """Encoder → (bridge) → decoder, trained with teacher forcing.

    The encoder's final state initializes the decoder. When the two state lists
    differ (a bidirectional encoder, other sizes or cells), a learned bridge maps the
    concatenated encoder states to the decoder's, s_0 = tanh([h_1; ...; h_n] W + b).

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes.
        embedding_dim: embedding size of both sides.
        encoder: recipe entry of the encoder's sequence layer.
        decoder: ``{"cell": "gru_cell", "units": 256, "num_layers": 2, "dropout": 0.1}``.
        attention: recipe entry of the decoder's attention layer, or None.
        sampled_softmax: 0 trains the output layer with the full softmax over the
            target vocabulary; n > 0 with a sampled softmax over the true word and n
            words drawn from a log-uniform (Zipf) distribution (Jean et al., 2015), which
            costs n instead of |V| columns of the output layer per token. Only training
            changes: validation, evaluation and decoding use the full softmax. The
            vocabulary must be ordered by frequency, as ``zoo.data.Vocab`` is.
            Defaults to 0.
        embedding_dropout: dropout on the source and target embeddings while
            training. Defaults to 0.

    Shapes: (source [batch, src_time], source_valid_len [batch], decoder_input
    [batch, tgt_time]) → logits [batch, tgt_time, tgt_vocab_size].
    """

    def __init__(
        self,
        src_vocab_size,
        tgt_vocab_size,
        embedding_dim,
        encoder,
        decoder,
        attention=None,
        sampled_softmax=0,
        embedding_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embedding_dropout = float(embedding_dropout)
        self.sampled_softmax = int(sampled_softmax)
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_spec = dict(encoder)
        self.decoder_spec = dict(decoder)
        self.attention_spec = dict(attention) if attention else None
        self.encoder = Seq2SeqEncoder(
            src_vocab_size,
            embedding_dim,
            self.encoder_spec,
            embedding_dropout=self.embedding_dropout,
            name="encoder",
        )
        self.decoder = Seq2SeqDecoder(
            tgt_vocab_size,
            embedding_dim,
            attention=self.attention_spec,
            embedding_dropout=self.embedding_dropout,
            name="decoder",
            **self.decoder_spec,
        )
        self.bridge = (
            None
            if self.encoder.state_size == self.decoder.state_size
            else keras.layers.Dense(sum(self.decoder.state_size), activation="tanh", name="bridge")
        )

    def run_encoder(self, source, source_valid_len, training=None):
        """→ (memory [batch, src_time, units], memory_mask, decoder states, fixed context)."""
        memory_mask = (
            ops.arange(ops.shape(source)[1])[None, :] < ops.cast(source_valid_len, "int32")[:, None]
        )
        memory, encoder_states = self.encoder(source, padding_mask=memory_mask, training=training)
        if self.bridge is None:
            states = list(encoder_states)
        else:
            joined = self.bridge(ops.concatenate(encoder_states, axis=-1))
            bounds = [0]
            for size in self.decoder.state_size:
                bounds.append(bounds[-1] + size)
            states = [
                joined[:, start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        fixed_context = states[self.decoder.top_state_index]
        return memory, memory_mask, states, fixed_context

    def encode(self, source, source_valid_len):
        """The source sentences → what decoding needs, as flat named tensors:
        ``state_0 ... state_{n-1}`` (the decoder's initial states, [batch, size] each)
        and, with attention, ``memory`` [batch, src_time, units], ``memory_mask``
        [batch, src_time] (1.0 at real tokens, 0.0 at padding) and ``keys`` (the
        attention's projected keys, computed once per sentence); without attention,
        ``context`` [batch, units], the fixed context c.

        Shapes: source [batch, src_time] int, source_valid_len [batch] int.
        """
        memory, memory_mask, states, fixed_context = self.run_encoder(source, source_valid_len)
        encoded = {f"state_{index}": state for index, state in enumerate(states)}
        if self.decoder.attention_layer is None:
            encoded["context"] = fixed_context
        else:
            encoded["memory"] = memory
            encoded["memory_mask"] = ops.cast(memory_mask, memory.dtype)
            encoded["keys"] = self.decoder.memory_keys(memory)
        return encoded

    @property
    def num_states(self):
        return len(self.decoder.state_size)

    def decode_step(self, tokens, encoded):
        """One target token per row: tokens [batch] int (the previous token, <bos> first)
        and ``encode``'s tensors, whose states are the latest ones → (log-probabilities
        [batch, tgt_vocab], new states, a list in the order state_0, state_1, ...)."""
        states = [encoded[f"state_{index}"] for index in range(self.num_states)]
        memory_mask = encoded.get("memory_mask")
        return self.decoder.step(
            tokens,
            states,
            encoded.get("memory"),
            None if memory_mask is None else ops.cast(memory_mask, "bool"),
            encoded.get("context"),
            encoded.get("keys"),
        )

    def attention_weights(self, source, source_valid_len, decoder_input):
        """The attention weights α of a given translation, replayed one token at a time
        as decoding made it: row t holds the weights over the source that the step
        predicting the t-th target token read (its query is the state before it).

        Shapes: source [batch, src_time] int, source_valid_len [batch] int,
        decoder_input [batch, tgt_time] int (<bos>, then the translation's tokens but
        the last) → [batch, tgt_time, src_time], 0 at padding, each row summing to 1.
        Needs an attention decoder.
        """
        encoded = self.encode(source, source_valid_len)
        states = [encoded[f"state_{index}"] for index in range(self.num_states)]
        memory, keys = encoded["memory"], encoded["keys"]
        memory_mask = ops.cast(encoded["memory_mask"], "bool")
        rows = []
        for step in range(decoder_input.shape[1]):
            query = states[self.decoder.top_state_index][:, None, :]
            _, weights = self.decoder.attention_layer.attend(
                query, keys, memory, key_mask=memory_mask, return_attention_scores=True
            )
            rows.append(weights[:, 0, :])
            _, states = self.decoder.step(
                decoder_input[:, step], states, memory, memory_mask, keys=keys
            )
        return ops.stack(rows, axis=1)

    def decoder_hidden(self, inputs, training=None):
        """(source, source_valid_len, decoder_input) → the decoder's outputs o_t, which
        the head maps to logits."""
        source, source_valid_len, decoder_input = inputs
        memory, memory_mask, states, fixed_context = self.run_encoder(
            source, source_valid_len, training
        )
        hidden, _ = self.decoder(
            decoder_input,
            states,
            memory,
            memory_mask,
            fixed_context,
            training=training,
            logits=False,
        )
        return hidden

    def call(self, inputs, training=None):
        return self.decoder.logits(self.decoder_hidden(inputs, training))

    def token_losses(self, hidden, targets):
        """The loss of each non-padding target token (id 0 is <pad>), in order: with
        ``sampled_softmax``, on the true word and that many sampled ones; else on the
        whole vocabulary."""
        keep = ops.not_equal(targets, 0)
        hidden = tf.boolean_mask(hidden, keep)
        labels = tf.boolean_mask(targets, keep)
        if not 0 < self.sampled_softmax < self.tgt_vocab_size:
            logits = self.decoder.logits(hidden)
            return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        weights, biases = self.decoder.output_weights()
        return tf.nn.sampled_softmax_loss(
            weights=weights,
            biases=biases,
            labels=tf.cast(labels, tf.int64)[:, None],
            inputs=hidden,
            num_sampled=self.sampled_softmax,
            num_classes=self.tgt_vocab_size,
        )

    def sampled_softmax_loss(self, hidden, targets):
        """Mean (sampled-softmax) loss over the non-padding target tokens."""
        return ops.mean(self.token_losses(hidden, targets))

    def train_step(self, data):
        """The mean loss over the batch's target tokens. Under ``tf.distribute`` each
        replica holds part of the batch: its loss is its tokens' sum over the tokens of
        the whole batch (counted across replicas), so the replicas' gradients add up to
        the gradient of the global mean, however the tokens fall."""
        inputs, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            losses = self.token_losses(self.decoder_hidden(inputs, training=True), targets)
            count = global_token_count(tf.cast(tf.size(losses), losses.dtype))
            loss = tf.math.divide_no_nan(tf.reduce_sum(losses), count)
            if self.losses:
                loss = loss + ops.sum(self.losses) / replicas_in_sync()
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        track_loss(self, loss, batch_size=tf.shape(targets)[0])
        return self.get_metrics_result()

    def translate(self, sentences, beam: int | None = None, alpha: float | None = None):
        """The translation of one sentence (a string) or of each of a list of them, with
        beam width ``beam`` and length penalty ``alpha`` (default: the recipe's), as
        ``zoo translate`` gives them; needs the model's ``preset`` (``zoo.load`` or
        ``from_preset``) for its vocabularies and decoding settings."""

        def make(preset):
            vocabularies = preset.vocabularies
            return preset.task.translator(
                self, vocabularies["src_vocab.txt"], vocabularies["tgt_vocab.txt"], preset.recipe
            )

        translator = self.session("translate", make)
        if isinstance(sentences, str):
            return translator.translate([sentences], beam, alpha)[0]
        return translator.translate(list(sentences), beam, alpha)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "src_vocab_size": self.src_vocab_size,
                "tgt_vocab_size": self.tgt_vocab_size,
                "embedding_dim": self.embedding_dim,
                "encoder": self.encoder_spec,
                "decoder": self.decoder_spec,
                "attention": self.attention_spec,
                "sampled_softmax": self.sampled_softmax,
                "embedding_dropout": self.embedding_dropout,
            }
        )
        return config
