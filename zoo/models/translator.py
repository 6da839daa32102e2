"""The encoder–decoder translator: seq2seq with an optional attention decoder."""

import keras
from keras import ops

from zoo.models.seq2seq_decoder import Seq2SeqDecoder
from zoo.models.seq2seq_encoder import Seq2SeqEncoder


@keras.saving.register_keras_serializable(package="zoo")
class Translator(keras.Model):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_spec = dict(encoder)
        self.decoder_spec = dict(decoder)
        self.attention_spec = dict(attention) if attention else None
        self.encoder = Seq2SeqEncoder(
            src_vocab_size, embedding_dim, self.encoder_spec, name="encoder"
        )
        self.decoder = Seq2SeqDecoder(
            tgt_vocab_size,
            embedding_dim,
            attention=self.attention_spec,
            name="decoder",
            **self.decoder_spec,
        )
        self.bridge = (
            None
            if self.encoder.state_size == self.decoder.state_size
            else keras.layers.Dense(sum(self.decoder.state_size), activation="tanh", name="bridge")
        )

    def encode(self, source, source_valid_len, training=None):
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

    def call(self, inputs, training=None):
        source, source_valid_len, decoder_input = inputs
        memory, memory_mask, states, fixed_context = self.encode(source, source_valid_len, training)
        logits, _ = self.decoder(
            decoder_input, states, memory, memory_mask, fixed_context, training=training
        )
        return logits

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
            }
        )
        return config
