"""Every registered sequence layer and cell, inside both tasks, exports to builtin-only
TFLite and computes what the Keras model computes, in both LiteRT APIs.

Generated over the registry: a language model with each streamable sequence layer
(its ``step``), a translator with each sequence layer as the encoder and each cell in
the decoder (``encode`` + ``decode_step``). Weights are random, inputs are real token
ids; no training is needed to check that the exported graph is the model's.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from zoo import registry
from zoo.export.litert import LITERT_APIS, LiteRTModel, op_names
from zoo.export.manifest import ExportError
from zoo.export.signatures import carried_names, language_model_signatures, translator_signatures
from zoo.export.tflite import convert
from zoo.layers import RecurrentCell
from zoo.layers.sequence_layer import SequenceLayer
from zoo.models import LanguageModel, Translator

ATOL = 1e-4
VOCAB, SRC_VOCAB, TGT_VOCAB, NUM_STEPS, BEAM = 23, 19, 21, 7, 3

BUILTIN = [
    entry for entry in registry.layers.entries() if entry.provider == registry.BUILTIN_PROVIDER
]
SEQUENCE_LAYERS = [entry.name for entry in BUILTIN if issubclass(entry.obj, SequenceLayer)]
CELLS = [entry.name for entry in BUILTIN if issubclass(entry.obj, RecurrentCell)]
STREAMABLE = [name for name in SEQUENCE_LAYERS if name != "bidirectional"]


def layer_spec(name, units=8):
    spec = {"name": name, "units": units}
    if name in ("deep_rnn", "bidirectional"):
        spec["layer"] = "lstm" if name == "deep_rnn" else "gru"
    return spec


def test_the_chapter_layers_are_covered():
    assert {"rnn", "gru", "lstm", "deep_rnn", "bidirectional"} <= set(SEQUENCE_LAYERS)
    assert {"rnn_cell", "gru_cell", "lstm_cell"} <= set(CELLS)


def check_file(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema

    names = op_names(flatbuffer)
    assert names and set(names) <= set(vars(schema.BuiltinOperator)) - {"CUSTOM"}, names


@pytest.mark.parametrize("layer", STREAMABLE)
def test_a_language_model_step_exports_like_keras(layer):
    model = LanguageModel(VOCAB, [layer_spec(layer)], embedding_dim=5)
    model(tf.zeros((1, 4), tf.int32))
    flatbuffer = convert(model, language_model_signatures(model, 1))
    check_file(flatbuffer)
    tokens = np.random.default_rng(0).integers(0, VOCAB, 12).astype(np.int32)
    for api in LITERT_APIS:
        litert = LiteRTModel.from_bytes(flatbuffer, api)
        keras_states = model.initial_state(1)
        states = {
            f"state_{i}": np.zeros((1, s), np.float32) for i, s in enumerate(model.state_sizes)
        }
        for token in tokens:
            logits, keras_states = model.step(tf.constant([token]), keras_states)
            outputs = litert.run("step", {"tokens": np.asarray([token], np.int32), **states})
            states = {name: outputs[name] for name in states}
            np.testing.assert_allclose(outputs["logits"], logits.numpy(), atol=ATOL, err_msg=api)


def test_a_bidirectional_language_model_cannot_stream():
    model = LanguageModel(VOCAB, [layer_spec("bidirectional")])
    model(tf.zeros((1, 4), tf.int32))
    with pytest.raises(ExportError, match="cannot run one step at a time"):
        convert(model, language_model_signatures(model, 1))


def translator(encoder, cell="gru_cell", attention=True):
    model = Translator(
        SRC_VOCAB,
        TGT_VOCAB,
        8,
        layer_spec(encoder),
        {"cell": cell, "units": 8, "num_layers": 2, "deep_output": True},
        attention={"name": "additive_attention", "units": 6} if attention else None,
    )
    model(
        (tf.zeros((1, NUM_STEPS), tf.int32), tf.constant([1]), tf.zeros((1, NUM_STEPS), tf.int32))
    )
    return model


# The default set keeps the cases no other default test covers: the encoder that cannot
# stream (the other layers and their cells export as language models above), a deep
# encoder without attention, and a decoder cell whose state is a pair; the rest (seconds
# each) are slow.
DEFAULT_CASES = {"encoder=bidirectional", "no-attention", "decoder=lstm_cell"}


def translator_case(encoder, cell, attention, case_id):
    marks = () if case_id in DEFAULT_CASES else pytest.mark.slow
    return pytest.param(encoder, cell, attention, id=case_id, marks=marks)


CASES = [
    *[translator_case(name, "gru_cell", True, f"encoder={name}") for name in SEQUENCE_LAYERS],
    *[translator_case("gru", cell, True, f"decoder={cell}") for cell in CELLS],
    translator_case("deep_rnn", "gru_cell", False, "no-attention"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("encoder", "cell", "attention"), CASES)
def test_a_translator_encode_and_decode_step_export_like_keras(encoder, cell, attention):
    model = translator(encoder, cell, attention)
    flatbuffer = convert(model, translator_signatures(model, NUM_STEPS, 1, BEAM))
    check_file(flatbuffer)
    rng = np.random.default_rng(1)
    source = np.zeros((1, NUM_STEPS), np.int32)
    source[0, :4] = rng.integers(4, SRC_VOCAB, 4)
    valid_len = np.asarray([4], np.int32)
    names = carried_names(model, NUM_STEPS)
    keras_state = model.encode(tf.constant(source), tf.constant(valid_len))
    for api in LITERT_APIS:
        litert = LiteRTModel.from_bytes(flatbuffer, api)
        encoded = litert.run("encode", {"source": source, "valid_len": valid_len})
        for name in names:
            np.testing.assert_allclose(encoded[name], keras_state[name].numpy(), atol=ATOL)
        rows = {name: np.repeat(encoded[name], BEAM, axis=0) for name in names}
        expected = {name: tf.repeat(keras_state[name], BEAM, axis=0) for name in names}
        for _ in range(4):
            tokens = rng.integers(1, TGT_VOCAB, BEAM).astype(np.int32)
            outputs = litert.run("decode_step", {"token": tokens, **rows})
            log_probs, states = model.decode_step(tf.constant(tokens), expected)
            np.testing.assert_allclose(outputs["log_probs"], log_probs.numpy(), atol=ATOL)
            for index, state in enumerate(states):
                name = f"state_{index}"
                np.testing.assert_allclose(outputs[name], state.numpy(), atol=ATOL, err_msg=api)
                rows[name], expected[name] = outputs[name], state


def test_an_op_outside_the_builtins_is_refused_naming_it():
    import keras

    model = keras.Sequential([keras.layers.Dense(2)])
    model.build((None, 3))

    def lengths(text):
        return {"length": tf.strings.length(text)}

    signature = {"lengths": (lengths, [tf.TensorSpec([1], tf.string, name="text")])}
    with pytest.raises(ExportError, match=r"outside LiteRT's builtins: .*StringLength") as raised:
        convert(model, signature)
    assert "\n" not in str(raised.value)
