"""Each registered cell's single step converts to builtin-only TFLite and computes the same step.

The step is ``cell(x_t, states)`` in a ``tf.function`` with a fixed signature, converted
by ``TFLiteConverter.from_concrete_functions([...], cell)`` with the weights frozen into
constants and only TFLITE_BUILTINS allowed, run by the LiteRT interpreter.

Why ``experimental_lower_to_saved_model = False``: given a Keras 3 layer as the
trackable object, the converter's default route saves it as a SavedModel first and
keeps the weights as VAR_HANDLE/READ_VARIABLE ops that the interpreter never
initialises, so the model runs and returns garbage (checked with TF 2.21 / LiteRT 2.3).
Turning that route off makes the converter freeze the variables into constants.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from zoo import registry
from zoo.layers import RecurrentCell

FEATURES, UNITS = 3, 5
ATOL = 1e-5
VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}

CELL_NAMES = [
    entry.name
    for entry in registry.layers.entries()
    if entry.provider == registry.BUILTIN_PROVIDER and issubclass(entry.obj, RecurrentCell)
]
# Options that change the step's graph, per cell (the GRU's cuDNN variant has its own bias use).
VARIANTS = {"gru_cell": ({}, {"reset_after": True})}
CASES = [
    pytest.param(name, options, id="-".join([name, *(f"{k}={v}" for k, v in options.items())]))
    for name in CELL_NAMES
    for options in VARIANTS.get(name, ({},))
]


def test_the_chapter_cells_are_covered():
    assert {"rnn_cell", "gru_cell", "lstm_cell"} <= set(CELL_NAMES)


def random_array(rng, shape):
    return rng.normal(size=shape).astype("float32")


def converted_step(cell, batch):
    """The cell's step as a builtin-only TFLite flatbuffer with inputs (x, *states) and
    outputs (h, *new_states)."""
    signature = [tf.TensorSpec((batch, FEATURES), tf.float32, name="x")] + [
        tf.TensorSpec((batch, size), tf.float32, name=f"state_{index}")
        for index, size in enumerate(cell.state_size)
    ]

    @tf.function(input_signature=signature)
    def step(x, *states):
        output, new_states = cell(x, list(states))
        return [output, *new_states]

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [step.get_concrete_function()], cell
    )
    converter.experimental_lower_to_saved_model = False  # freeze the weights (see the module doc)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize(("name", "options"), CASES)
def test_cell_step_runs_in_tflite_like_keras(name, options, batch):
    rng = np.random.default_rng(batch)
    cell = registry.layers.get(name)(UNITS, **options)
    x = random_array(rng, (batch, FEATURES))
    states = [random_array(rng, (batch, size)) for size in cell.state_size]
    cell(x, states)
    cell.set_weights(
        [0.5 * random_array(rng, w.shape) for w in cell.get_weights()]
    )  # non-zero biases

    interpreter = Interpreter(model_content=converted_step(cell, batch))
    op_names = [op["op_name"] for op in interpreter._get_ops_details()]  # before any delegate
    assert op_names
    flex_or_custom = [op for op in op_names if op.startswith("Flex") or op.upper() == "CUSTOM"]
    assert not flex_or_custom, f"non-builtin ops: {flex_or_custom}"
    assert not VARIABLE_OPS & set(op_names), (
        f"weights not frozen: {sorted(VARIABLE_OPS & set(op_names))}"
    )

    interpreter.allocate_tensors()
    feeds = {"x": x, **{f"state_{index}": state for index, state in enumerate(states)}}
    inputs = interpreter.get_input_details()
    assert sorted(detail["name"] for detail in inputs) == sorted(feeds)
    for detail in inputs:
        assert tuple(detail["shape"]) == feeds[detail["name"]].shape
        interpreter.set_tensor(detail["index"], feeds[detail["name"]])
    interpreter.invoke()
    # The frozen graph keeps the concrete function's output order: h, *new_states.
    outputs = [
        interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()
    ]

    expected_output, expected_states = cell(x, states)
    expected = [np.asarray(expected_output), *(np.asarray(state) for state in expected_states)]
    assert len(outputs) == len(expected) == 1 + len(cell.state_size)
    for index, (actual, wanted) in enumerate(zip(outputs, expected, strict=True)):
        np.testing.assert_allclose(actual, wanted, rtol=0, atol=ATOL, err_msg=f"output {index}")
