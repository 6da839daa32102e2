"""The token-level signatures an export offers, as (function, input signature) pairs:
a language model's ``step``, a translator's ``encode`` and ``decode_step``. Every
tensor is flat and named, inputs and outputs alike, so an app feeds them by name.

The batch is ``None`` (any) in a SavedModel and fixed in a TFLite file: LiteRT's
converter needs static shapes to lower the encoder's loop to builtin ops.
"""

from __future__ import annotations

import tensorflow as tf


def language_model_signatures(model, batch_size: int | None) -> dict:
    """``step``: tokens [batch] int32 and state_0..n [batch, size] → logits [batch,
    vocab] and the new states under the same names."""
    specs = [tf.TensorSpec([batch_size], tf.int32, name="tokens")] + [
        tf.TensorSpec([batch_size, size], tf.float32, name=f"state_{index}")
        for index, size in enumerate(model.state_sizes)
    ]

    def step(tokens, *states):
        logits, new_states = model.step(tokens, list(states))
        return {"logits": logits, **{f"state_{i}": s for i, s in enumerate(new_states)}}

    return {"step": (step, specs)}


def materialized(tensor, twin=False):
    """``tensor`` through one more op that changes no value (max with the lowest float).
    LiteRT's CompiledModel (ai_edge_litert 2.3, and LiteRT.js) cannot bind an output that
    comes straight out of a WHILE loop, as a recurrent encoder's final state does; the
    classic Interpreter can. The converter folds an identity away, but not this.

    ``twin``: the tensor is also another output (the fixed context is the top initial
    state): it takes a min with the highest float instead, so that the converter does
    not merge the two outputs into one tensor and lose a name."""
    if twin:
        return tf.minimum(tensor, tf.float32.max)
    return tf.maximum(tensor, tf.float32.min)


def encoded_specs(model, num_steps: int) -> dict[str, tf.TensorSpec]:
    """The names and per-row shapes of what ``Translator.encode`` returns."""
    example = model.encode(tf.zeros((1, num_steps), tf.int32), tf.constant([1]))
    return {name: tf.TensorSpec(value.shape[1:], tf.float32) for name, value in example.items()}


def carried_names(model, num_steps: int) -> list[str]:
    """decode_step's inputs after the token: the states, then what stays fixed per
    sentence (memory, memory_mask, keys or context), in that order."""
    names = list(encoded_specs(model, num_steps))
    states = [f"state_{index}" for index in range(model.num_states)]
    return states + sorted(name for name in names if name not in states)


def translator_signatures(
    model, num_steps: int, encode_batch: int | None, decode_batch: int | None
) -> dict:
    """``encode``: source [batch, num_steps] int32 and valid_len [batch] int32 → the
    decoder's initial states and what attention reads; ``decode_step``: token [rows]
    int32 and those tensors → log_probs [rows, vocab] and the new states."""
    per_row = encoded_specs(model, num_steps)
    names = carried_names(model, num_steps)
    encode_specs = [
        tf.TensorSpec([encode_batch, num_steps], tf.int32, name="source"),
        tf.TensorSpec([encode_batch], tf.int32, name="valid_len"),
    ]
    decode_specs = [tf.TensorSpec([decode_batch], tf.int32, name="token")] + [
        tf.TensorSpec([decode_batch, *per_row[name].shape], tf.float32, name=name) for name in names
    ]

    def encode(source, valid_len):
        # Reshaped to their known shapes: after the encoder's loop the converter can
        # leave the memory's time axis dynamic, which the Interpreter resolves at run
        # time but the CompiledModel does not (it reads one step).
        return {
            name: materialized(
                tf.reshape(value, [encode_batch or -1, *per_row[name].shape]), name == "context"
            )
            for name, value in model.encode(source, valid_len).items()
        }

    def decode_step(token, *tensors):
        log_probs, states = model.decode_step(token, dict(zip(names, tensors, strict=True)))
        return {"log_probs": log_probs, **{f"state_{i}": s for i, s in enumerate(states)}}

    return {"encode": (encode, encode_specs), "decode_step": (decode_step, decode_specs)}
