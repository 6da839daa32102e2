"""The native LSTM training kernels (``zoo.layers.native``): the same values and
gradients as TensorFlow's loop, used by the LSTM layer while training, and a clean
fallback with one line when they cannot be built."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from zoo import layers
from zoo.cli.main import cli
from zoo.layers import native
from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.recurrent import scan_over_time

pytestmark = pytest.mark.skipif(
    native.library() is None, reason="the native kernels cannot be built on this machine"
)

# (batch, time, features, units, recurrent mask, padding mask, bias): one thread and
# several, unit slices that are not multiples of 16, a single unit, a single step.
CASES = [
    (3, 5, 7, 13, False, False, True),
    (3, 5, 7, 13, True, True, True),
    (4, 9, 5, 100, True, True, True),
    (5, 7, 9, 40, False, True, False),
    (2, 3, 2, 1, True, True, True),
    (4, 1, 3, 64, True, False, True),
    (8, 12, 16, 96, False, False, True),
]


def reference(cell, inputs, states, recurrent_mask, mask):
    """TensorFlow's own loop over the cell's transition: what the layer runs without
    the kernels."""
    projected = cell.project_inputs(inputs)
    return scan_over_time(
        lambda x_t, step_states: cell.transition(x_t, step_states, recurrent_mask),
        projected,
        states,
        mask,
    )


def values_and_gradients(run, cell, inputs, states, weights):
    """Outputs, final states and the gradients of a fixed random projection of all of
    them for the inputs, the initial states and every weight."""
    with tf.GradientTape() as tape:
        tape.watch([inputs, *states])
        outputs, (h, c) = run()
        loss = (
            tf.reduce_sum(outputs * weights[0])
            + tf.reduce_sum(h * weights[1])
            + tf.reduce_sum(c * weights[2])
        )
    gradients = tape.gradient(loss, [inputs, *states, *cell.trainable_weights])
    return [outputs, h, c, *gradients]


@pytest.mark.parametrize("batch,steps,features,units,recurrent,padded,use_bias", CASES)
def test_kernels_match_tensorflows_loop(batch, steps, features, units, recurrent, padded, use_bias):
    rng = np.random.default_rng(units)
    cell = LSTMCell(units, use_bias=use_bias)
    cell.build((batch, features))
    if use_bias:
        cell.bias.assign(rng.normal(size=(4 * units,)).astype("float32"))

    def tensor(*shape):
        return tf.constant(rng.normal(size=shape).astype("float32"))

    inputs, states = tensor(batch, steps, features), [tensor(batch, units), tensor(batch, units)]
    recurrent_mask = (
        tf.constant((rng.random((batch, units)) > 0.3).astype("float32") / 0.7)
        if recurrent
        else None
    )
    mask = tf.constant(rng.random((batch, steps)) > 0.3) if padded else None
    weights = [tensor(batch, steps, units), tensor(batch, units), tensor(batch, units)]

    ours = values_and_gradients(
        lambda: native.lstm_layer(
            inputs, cell.kernel, cell.bias, cell.recurrent_kernel, states, recurrent_mask, mask
        ),
        cell,
        inputs,
        states,
        weights,
    )
    theirs = values_and_gradients(
        lambda: reference(cell, inputs, states, recurrent_mask, mask), cell, inputs, states, weights
    )
    names = ["outputs", "h", "c", "d_inputs", "d_h0", "d_c0"] + [
        w.name for w in cell.trainable_weights
    ]
    for name, a, b in zip(names, ours, theirs, strict=True):
        scale = 1.0 + float(tf.reduce_max(tf.abs(b)))
        np.testing.assert_allclose(a / scale, b / scale, atol=1e-5, err_msg=name)


def test_no_steps_returns_the_initial_states():
    cell = LSTMCell(8)
    cell.build((2, 3))
    h0, c0 = tf.ones((2, 8)), 2 * tf.ones((2, 8))
    outputs, (h, c) = native.lstm_layer(
        tf.zeros((2, 0, 3)), cell.kernel, cell.bias, cell.recurrent_kernel, [h0, c0]
    )
    assert outputs.shape == (2, 0, 8)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(c, c0)


def traced_op_types(layer, inputs, training):
    @tf.function
    def call():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(inputs, training=training))
        return tape.gradient(loss, layer.trainable_weights)

    graph = call.get_concrete_function().graph
    return {op.type for op in graph.get_operations()}


def test_the_layer_trains_with_the_kernels_and_infers_with_tensorflow():
    layer = layers.LSTM(32, return_sequences=True)
    inputs = tf.random.normal((4, 6, 5))
    assert {"ZooLstm", "ZooLstmGrad"} <= traced_op_types(layer, inputs, training=True)
    # Inference (and so every export) uses TensorFlow's ops only.
    assert not {op for op in traced_op_types(layer, inputs, training=False) if "Zoo" in op}


def test_the_layer_gives_the_same_training_step_without_the_kernels(monkeypatch):
    """Two LSTM layers with the same weights and seed (so the same dropout masks), one
    with the kernels and one without: the same outputs and gradients."""
    inputs = tf.random.normal((6, 10, 12), seed=1)
    mask = tf.sequence_mask([10, 7, 3, 10, 1, 5], 10)

    def step(use_kernels):
        monkeypatch.setenv(native.SWITCH, "1" if use_kernels else "0")
        keras.utils.set_random_seed(3)
        layer = layers.LSTM(48, return_sequences=True, dropout=0.2, recurrent_dropout=0.3, seed=5)
        with tf.GradientTape() as tape:
            outputs = layer(inputs, mask=mask, training=True)
            loss = tf.reduce_sum(outputs * tf.range(48, dtype=tf.float32))
        return [outputs, *tape.gradient(loss, layer.trainable_weights)]

    for a, b in zip(step(True), step(False), strict=True):
        scale = 1.0 + float(tf.reduce_max(tf.abs(b)))
        np.testing.assert_allclose(a / scale, b / scale, atol=1e-5)


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """An empty kernel cache and a compiler that fails; the loaded kernels come back
    afterwards."""
    saved = dict(native._state)
    native._state.clear()
    monkeypatch.setenv("ZOO_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", "false")
    yield
    native._state.clear()
    native._state.update(saved)


def test_without_a_compiler_training_falls_back_with_one_line(no_compiler, capsys):
    assert native.library() is None
    assert native.library() is None  # said once
    lines = capsys.readouterr().err.strip().splitlines()
    # "compiling ..." when the build starts, then why there are no kernels, once.
    assert lines[0].startswith("zoo: compiling the native LSTM kernel")
    (notice,) = lines[1:]
    assert notice.startswith("zoo: the native LSTM kernel is not available (false failed")
    assert "ZOO_NATIVE_KERNELS=0" in notice
    layer = layers.LSTM(8, return_sequences=True)
    inputs = tf.random.normal((2, 3, 4))
    assert not {op for op in traced_op_types(layer, inputs, training=True) if "Zoo" in op}
    assert not list(native.cache_dir().glob("*.so"))  # nothing half-built is left


def test_zoo_kernels_command(no_compiler):
    result = CliRunner().invoke(cli, ["kernels"])
    assert result.exit_code == 1
    assert result.stderr.startswith("zoo: native LSTM kernel not available: false failed")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_kernel_cache_that_is_a_file_is_one_line(no_compiler, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("the user's\n")
    monkeypatch.setenv("ZOO_KERNEL_CACHE", str(tmp_path / "a-file"))
    result = CliRunner().invoke(cli, ["kernels"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"zoo: native LSTM kernel not available: the kernel cache {tmp_path / 'a-file'} "
        "cannot be used (not a folder); set ZOO_KERNEL_CACHE to a folder zoo may write\n"
    )
    assert (tmp_path / "a-file").read_text() == "the user's\n"


def test_zoo_kernels_command_reports_the_library():
    result = CliRunner().invoke(cli, ["kernels"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("native LSTM kernel: ")
    assert result.stdout.strip().endswith(".so")


@pytest.mark.slow  # a fresh TensorFlow process; loading the library is checked in-process
def test_another_process_uses_the_cached_library():
    """The library is built once per TensorFlow, source, compiler and CPU: a new process
    loads it from the cache without compiling."""
    code = (
        "from zoo.layers import native; import sys; "
        "sys.exit(0 if native.library() is not None else 1)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "compiling" not in result.stderr


@pytest.mark.slow
def test_the_portable_path_without_avx512_gives_the_same_values(tmp_path):
    """Built without AVX-512 (``ZOO_KERNEL_FLAGS=-mno-avx512f``), the per-step products
    are Eigen's: the same values as TensorFlow's loop."""
    code = """
import numpy as np, tensorflow as tf
from zoo.layers import native
from zoo.layers.lstm_cell import LSTMCell
from zoo.layers.recurrent import scan_over_time
cell = LSTMCell(40); cell.build((3, 6))
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(3, 5, 6)).astype("float32"))
states = [tf.zeros((3, 40)), tf.zeros((3, 40))]
mask = tf.constant(rng.random((3, 5)) > 0.3)
def run(native_path):
    with tf.GradientTape() as tape:
        if native_path:
            out, _ = native.lstm_layer(
                x, cell.kernel, cell.bias, cell.recurrent_kernel, states, None, mask
            )
        else:
            out, _ = scan_over_time(cell.transition, cell.project_inputs(x), states, mask)
        loss = tf.reduce_sum(out * out)
    return [out, *tape.gradient(loss, cell.trainable_weights)]
assert native.library() is not None
for a, b in zip(run(True), run(False)):
    np.testing.assert_allclose(a, b, atol=1e-5)
"""
    env = {
        **__import__("os").environ,
        "ZOO_KERNEL_FLAGS": "-mno-avx512f",
        "ZOO_KERNEL_CACHE": str(tmp_path / "kernels"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "compiling" in result.stderr
