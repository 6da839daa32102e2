"""Every built-in registered layer against a reference that computes the same function.

The tests are generated from ``zoo.registry.layers``: each built-in name must have a
reference case in ``REFERENCE_CASES`` (a factory for our layer, one for the Keras layer
computing the same function, or a NumPy version of the equation where Keras has none,
and how weights copy across), so a layer registered without one fails
``test_every_builtin_layer_has_a_reference_case``.

Reference weights are randomised (biases included) before they are copied into our
layer, so a wrong gate order, a misplaced bias or a transposed kernel shows up.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from chapter import CHAPTER_LAYERS

from zoo import registry
from zoo.layers import (
    GRU,
    LSTM,
    MLP,
    RNN,
    AdditiveAttention,
    Bidirectional,
    DeepRNN,
    GRUCell,
    LSTMCell,
    Recurrent,
    RNNCell,
    fused_loops,
)

BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 5
QUERIES, KEY_FEATURES, VALUE_FEATURES = 2, 4, 7  # attention: keys and values are STEPS long
LENGTHS = (6, 4, 1, 3)  # valid steps of each sequence; the padding is at the end
ATOL = 1e-5
BASE_LAYER_KEYS = {"name", "trainable", "dtype"}


# --------------------------------------------------------------------------- helpers


def random_array(seed, shape, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype("float32")


def padding_mask(lengths=LENGTHS, steps=STEPS):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def randomize(layer, seed=1):
    """Sets every weight of ``layer`` (biases too) to N(0, 0.5²) values."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [(0.5 * rng.normal(size=w.shape)).astype("float32") for w in layer.get_weights()]
    )
    return layer


def copy_weights(ours, reference):
    ours.set_weights(reference.get_weights())


def flat(result):
    return [np.asarray(tensor) for tensor in keras.tree.flatten(result)]


def assert_close(actual, expected, atol=ATOL):
    actual, expected = flat(actual), flat(expected)
    assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a.shape == e.shape, f"output {index}: shape {a.shape}, expected {e.shape}"
        np.testing.assert_allclose(a, e, rtol=0, atol=atol, err_msg=f"output {index}")


def assert_identical(actual, expected):
    actual, expected = flat(actual), flat(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, e)


class KerasStack:
    """Keras sequence layers run one after another, like ``DeepRNN``; the flat state list
    is every layer's states, bottom layer first."""

    def __init__(self, layers):
        self.layers = layers

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def build(self, inputs, mask=None):
        self(inputs, mask=mask)
        for index, layer in enumerate(self.layers):
            randomize(layer, seed=10 + index)

    def __call__(self, inputs, mask=None, initial_state=None):
        sequence, states, offset = inputs, [], 0
        for layer in self.layers:
            width = len(layer.cell.state_size) if isinstance(layer.cell.state_size, list) else 1
            initial = (
                None if initial_state is None else list(initial_state[offset : offset + width])
            )
            sequence, *layer_states = layer(sequence, mask=mask, initial_state=initial)
            states += layer_states
            offset += width
        return sequence, states


# --------------------------------------------------------------------------- reference cases

# How each kind of layer is fed: sample arrays and the call that applies a layer to them.
# Sequence-like layers get a padding mask, so .keras files and training see masks too.


def cell_sample(layer, seed):
    return [random_array(seed, (BATCH, FEATURES))] + [
        random_array(seed + 1 + index, (BATCH, size)) for index, size in enumerate(layer.state_size)
    ]


def sequence_sample(layer, seed):
    return [random_array(seed, (BATCH, STEPS, FEATURES)), padding_mask()]


def feedforward_sample(layer, seed):
    return [random_array(seed, (BATCH, FEATURES))]


def attention_sample(layer, seed):
    """query, keys, values and a key mask from the padding of the keys."""
    return [
        random_array(seed, (BATCH, QUERIES, FEATURES)),
        random_array(seed + 1, (BATCH, STEPS, KEY_FEATURES)),
        random_array(seed + 2, (BATCH, STEPS, VALUE_FEATURES)),
        padding_mask(),
    ]


SAMPLES = {
    "cell": (cell_sample, lambda layer, arrays: layer(arrays[0], list(arrays[1:]))),
    "sequence": (sequence_sample, lambda layer, arrays: layer(arrays[0], mask=arrays[1])),
    "feedforward": (feedforward_sample, lambda layer, arrays: layer(arrays[0])),
    "attention": (attention_sample, lambda layer, arrays: layer(*arrays[:3], key_mask=arrays[3])),
}
SAMPLES["stack"] = SAMPLES["bidirectional"] = SAMPLES["sequence"]


@dataclass(frozen=True)
class ReferenceCase:
    """How to check one registered layer.

    kind: "cell", "sequence", "stack", "bidirectional", "feedforward" or "attention".
    layer_class: the class registered under the case's name.
    ours / reference: build our layer / the reference from the same keyword options.
    example: non-default constructor arguments, for the config, .keras and training tests.
    variants: options given to both ``ours`` and ``reference`` in the comparisons.
    copy: copies the reference's weights into ours.
    """

    kind: str
    layer_class: type
    ours: Callable[..., Any]
    reference: Callable[..., Any]
    example: dict = field(default_factory=dict)
    variants: tuple = ({},)
    copy: Callable[[Any, Any], None] = copy_weights

    def make(self):
        return self.layer_class(**self.example)

    def sample(self, layer, seed=0):
        return SAMPLES[self.kind][0](layer, seed)

    def apply(self, layer, arrays):
        return SAMPLES[self.kind][1](layer, arrays)


def keras_gru(units, **options):
    return keras.layers.GRU(units, **{"reset_after": False, **options})


def keras_gru_cell(units, **options):
    return keras.layers.GRUCell(units, **{"reset_after": False, **options})


def keras_stack(units, layer="gru", num_layers=2, layer_kwargs=None, **unused):
    reference = REFERENCE_CASES[layer].reference
    return KerasStack(
        [
            reference(units, return_sequences=True, return_state=True, **(layer_kwargs or {}))
            for _ in range(num_layers)
        ]
    )


def keras_bidirectional(
    units,
    layer="gru",
    merge_mode="concat",
    return_sequences=False,
    return_state=False,
    layer_kwargs=None,
):
    inner = REFERENCE_CASES[layer].reference(
        units, return_sequences=return_sequences, return_state=return_state, **(layer_kwargs or {})
    )
    return keras.layers.Bidirectional(inner, merge_mode=merge_mode)


def keras_mlp(hidden_units=(10,), activation="relu"):
    return keras.Sequential(
        [keras.layers.Dense(units, activation=activation) for units in hidden_units]
    )


class NumpyAdditiveAttention:
    """The chapter's additive attention in NumPy (float64), with N(0, 0.5²) weights drawn
    on the first call; dropout is a training-time matter and is left out.

        α_i = softmax_i(w_v^T tanh(W_q q + W_k k_i)) over the unmasked keys; Σ_i α_i v_i
    """

    def __init__(self, units, dropout=0.0):
        self.units = units
        self.query_kernel = self.key_kernel = self.score_kernel = None

    def __call__(self, query, keys, values, key_mask=None):
        if self.query_kernel is None:
            rng = np.random.default_rng(2)
            self.query_kernel = 0.5 * rng.normal(size=(query.shape[-1], self.units))
            self.key_kernel = 0.5 * rng.normal(size=(keys.shape[-1], self.units))
            self.score_kernel = 0.5 * rng.normal(size=(self.units, 1))
        query, keys, values = (np.asarray(array, "float64") for array in (query, keys, values))
        features = np.tanh(
            (query @ self.query_kernel)[:, :, None, :] + (keys @ self.key_kernel)[:, None, :, :]
        )
        scores = (features @ self.score_kernel)[..., 0]  # (batch, queries, keys)
        if key_mask is not None:
            scores = np.where(key_mask[:, None, :], scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        return weights @ values, weights


def copy_attention_weights(ours, reference):
    ours.query_dense.kernel.assign(reference.query_kernel)
    ours.key_dense.kernel.assign(reference.key_kernel)
    ours.score_dense.kernel.assign(reference.score_kernel)


REFERENCE_CASES = {
    "rnn_cell": ReferenceCase(
        "cell",
        RNNCell,
        RNNCell,
        keras.layers.SimpleRNNCell,
        example={"units": UNITS, "activation": "relu"},
        variants=({}, {"use_bias": False}, {"activation": "relu"}),
    ),
    "gru_cell": ReferenceCase(
        "cell",
        GRUCell,
        GRUCell,
        keras_gru_cell,
        example={"units": UNITS, "reset_after": True, "recurrent_activation": "hard_sigmoid"},
        variants=(
            {},
            {"reset_after": True},
            {"use_bias": False},
            {"reset_after": True, "use_bias": False},
        ),
    ),
    "lstm_cell": ReferenceCase(
        "cell",
        LSTMCell,
        LSTMCell,
        keras.layers.LSTMCell,
        example={"units": UNITS, "unit_forget_bias": False, "recurrent_activation": "hard_sigmoid"},
        variants=({}, {"use_bias": False}),
    ),
    "rnn": ReferenceCase(
        "sequence",
        RNN,
        RNN,
        keras.layers.SimpleRNN,
        example={
            "units": UNITS,
            "activation": "relu",
            "return_sequences": True,
            "return_state": True,
        },
        variants=({}, {"use_bias": False}),
    ),
    "gru": ReferenceCase(
        "sequence",
        GRU,
        GRU,
        keras_gru,
        example={
            "units": UNITS,
            "reset_after": True,
            "return_sequences": True,
            "return_state": True,
        },
        variants=({}, {"reset_after": True}, {"use_bias": False}),
    ),
    "lstm": ReferenceCase(
        "sequence",
        LSTM,
        LSTM,
        keras.layers.LSTM,
        example={
            "units": UNITS,
            "unit_forget_bias": False,
            "recurrent_activation": "hard_sigmoid",
            "return_sequences": True,
            "return_state": True,
        },
        variants=({}, {"use_bias": False}),
    ),
    "deep_rnn": ReferenceCase(
        "stack",
        DeepRNN,
        DeepRNN,
        keras_stack,
        example={
            "units": UNITS,
            "layer": "lstm",
            "num_layers": 2,
            "dropout": 0.25,
            "return_sequences": True,
            "return_state": True,
            "layer_kwargs": {"recurrent_activation": "hard_sigmoid"},
        },
    ),
    "bidirectional": ReferenceCase(
        "bidirectional",
        Bidirectional,
        Bidirectional,
        keras_bidirectional,
        example={
            "units": UNITS,
            "layer": "lstm",
            "merge_mode": "sum",
            "return_sequences": True,
            "return_state": True,
            "layer_kwargs": {"unit_forget_bias": False},
        },
    ),
    "mlp": ReferenceCase(
        "feedforward",
        MLP,
        MLP,
        keras_mlp,
        example={"hidden_units": [7, UNITS], "activation": "tanh"},
    ),
    "additive_attention": ReferenceCase(
        "attention",
        AdditiveAttention,
        AdditiveAttention,
        NumpyAdditiveAttention,
        example={"units": UNITS, "dropout": 0.25},
        copy=copy_attention_weights,
    ),
}

BUILTIN_NAMES = [
    entry.name for entry in registry.layers.entries() if entry.provider == registry.BUILTIN_PROVIDER
]
SEQUENCE_LAYER_NAMES = [
    name
    for name in BUILTIN_NAMES
    if name in REFERENCE_CASES and REFERENCE_CASES[name].kind == "sequence"
]


def case_for(name):
    if name not in REFERENCE_CASES:
        pytest.fail(f"built-in layer '{name}' has no reference case in tests/test_layers.py")
    return REFERENCE_CASES[name]


def names_of_kind(kind):
    return [
        name
        for name in BUILTIN_NAMES
        if name in REFERENCE_CASES and REFERENCE_CASES[name].kind == kind
    ]


def variant_id(variant):
    return "-".join(f"{key}={value}" for key, value in variant.items()) or "default"


def variant_params(kind):
    return [
        pytest.param(name, variant, id=f"{name}-{variant_id(variant)}")
        for name in names_of_kind(kind)
        for variant in REFERENCE_CASES[name].variants
    ]


def sequence_params(*combinations):
    """Every option combination with each layer's default variant; the other variants
    (reset_after=True, use_bias=False, ...) with the first two only."""
    params = []
    for name in names_of_kind("sequence"):
        default, *others = REFERENCE_CASES[name].variants
        for options in combinations:
            params.append(
                pytest.param(
                    name,
                    default,
                    *options,
                    id="-".join([name, variant_id(default), *map(str, options)]),
                )
            )
        for variant in others:
            for options in combinations[:2]:
                params.append(
                    pytest.param(
                        name,
                        variant,
                        *options,
                        id="-".join([name, variant_id(variant), *map(str, options)]),
                    )
                )
    return params


# --------------------------------------------------------------------------- the registry ↔ cases


def test_builtin_layers_are_registered():
    assert BUILTIN_NAMES, "no built-in layers registered"
    assert CHAPTER_LAYERS <= set(BUILTIN_NAMES)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_every_builtin_layer_has_a_reference_case(name):
    case = case_for(name)
    assert case.layer_class is registry.layers.get(name)


def test_no_reference_case_for_an_unregistered_name():
    assert set(REFERENCE_CASES) <= set(BUILTIN_NAMES)


# --------------------------------------------------------------------------- cells


@pytest.mark.parametrize(("name", "variant"), variant_params("cell"))
def test_cell_step_matches_keras(name, variant):
    case = REFERENCE_CASES[name]
    ours, reference = case.ours(UNITS, **variant), case.reference(UNITS, **variant)
    arrays = cell_sample(ours, seed=3)
    x, states = arrays[0], list(arrays[1:])
    reference(x, states)
    randomize(reference)
    ours(x, states)
    case.copy(ours, reference)

    output, new_states = ours(x, states)
    expected_output, expected_states = reference(x, states)
    assert len(new_states) == len(ours.state_size)
    assert_close([output, *new_states], [expected_output, *keras.tree.flatten(expected_states)])


@pytest.mark.parametrize("name", names_of_kind("cell"))
def test_cell_initial_state_is_zeros_of_state_size(name):
    cell = REFERENCE_CASES[name].ours(UNITS)
    states = cell.get_initial_state(3)
    assert [tuple(state.shape) for state in states] == [(3, size) for size in cell.state_size]
    assert all(not np.any(np.asarray(state)) for state in states)


# --------------------------------------------------------------------------- sequence layers


@pytest.mark.parametrize(
    ("name", "variant", "return_sequences", "return_state", "masked"),
    sequence_params(
        *[
            (sequences, state, masked)
            for sequences in (True, False)
            for state in (True, False)
            for masked in (True, False)
        ]
    ),
)
def test_sequence_layer_matches_keras(name, variant, return_sequences, return_state, masked):
    case = REFERENCE_CASES[name]
    options = {"return_sequences": return_sequences, "return_state": return_state, **variant}
    ours = case.ours(UNITS, **options)
    # Our padded steps output zeros. Keras' zero_output_for_mask=True also zeroes the
    # *last* output of a padded sequence, whereas ours (and Keras' default) returns the
    # output of the last valid step, so it is set only when sequences are returned.
    reference = case.reference(UNITS, zero_output_for_mask=return_sequences, **options)
    x, mask = random_array(4, (BATCH, STEPS, FEATURES)), padding_mask() if masked else None
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)

    assert_close(ours(x, mask=mask), reference(x, mask=mask))


@pytest.mark.parametrize(
    ("name", "variant", "return_sequences", "masked"),
    sequence_params((True, True), (False, True), (True, False)),
)
def test_sequence_layer_initial_state_matches_keras(name, variant, return_sequences, masked):
    case = REFERENCE_CASES[name]
    options = {"return_sequences": return_sequences, "return_state": True, **variant}
    ours = case.ours(UNITS, **options)
    reference = case.reference(UNITS, zero_output_for_mask=return_sequences, **options)
    x, mask = random_array(5, (BATCH, STEPS, FEATURES)), padding_mask() if masked else None
    initial_state = [
        random_array(6 + index, (BATCH, size)) for index, size in enumerate(ours.state_size)
    ]
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)

    result = ours(x, mask=mask, initial_state=initial_state)
    assert_close(result, reference(x, mask=mask, initial_state=initial_state))
    # The initial state matters: starting from zeros gives something else.
    assert not np.allclose(flat(result)[-1], flat(ours(x, mask=mask))[-1], atol=1e-3)


@pytest.mark.parametrize("fused", [False, True], ids=["generic", "fused"])
@pytest.mark.parametrize(("name", "variant", "masked"), sequence_params((True,), (False,)))
def test_training_gradients_match_keras(name, variant, masked, fused, monkeypatch):
    """While training, the recurrent products take their gradient from a stored Wᵀ (see
    ``RecurrentProduct``), and large LSTM and GRU layers run a loop with its backward
    pass written out (``fused_loops``, here forced on for small ones): the gradients for
    the inputs, the initial state and every weight must still be Keras' autodiff's."""
    monkeypatch.setattr(fused_loops, "MIN_KERNEL_ENTRIES", 0 if fused else 1 << 62)
    case = REFERENCE_CASES[name]
    options = {"return_sequences": True, "return_state": True, **variant}
    ours = case.ours(UNITS, **options)
    reference = case.reference(UNITS, zero_output_for_mask=True, **options)
    x, mask = random_array(4, (BATCH, STEPS, FEATURES)), padding_mask() if masked else None
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)
    x = tf.constant(x)
    initial = [
        tf.constant(random_array(6 + index, (BATCH, size)))
        for index, size in enumerate(ours.state_size)
    ]

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch([x, *initial])
            outputs = keras.tree.flatten(
                layer(x, mask=mask, initial_state=list(initial), training=True)
            )
            loss = sum(
                tf.reduce_sum(output * random_array(50 + index, output.shape))
                for index, output in enumerate(outputs)
            )
        return tape.gradient(loss, [x, *initial, *layer.trainable_weights])

    assert_close(gradients(ours), gradients(reference), atol=1e-4)


@pytest.mark.parametrize("name", SEQUENCE_LAYER_NAMES)
def test_mask_from_an_embedding_reaches_stacked_layers(name):
    """Embedding(mask_zero=True) → ours → ours: Keras passes the mask on through compute_mask."""
    case = REFERENCE_CASES[name]
    tokens = np.where(
        padding_mask(), np.random.default_rng(7).integers(1, 9, size=(BATCH, STEPS)), 0
    )

    def model(layer_factory):
        return keras.Sequential(
            [
                keras.Input((STEPS,), dtype="int32"),
                keras.layers.Embedding(9, FEATURES, mask_zero=True),
                layer_factory(return_sequences=True),
                layer_factory(return_sequences=False),
            ]
        )

    ours = model(lambda **options: case.ours(UNITS, **options))
    reference = model(
        lambda **options: case.reference(
            UNITS, zero_output_for_mask=options["return_sequences"], **options
        )
    )
    randomize(reference)
    copy_weights(ours, reference)
    expected = reference(tokens)
    assert_close(ours(tokens), expected)
    # The mask matters: reading the padding tokens gives something else.
    embedding, first, second = ours.layers
    everything = np.ones_like(tokens, bool)
    no_mask = second(first(embedding(tokens), mask=everything), mask=everything)
    assert not np.allclose(np.asarray(no_mask), np.asarray(expected), atol=1e-3)


# --------------------------------------------------------------------------- deep_rnn


@pytest.mark.parametrize(
    ("num_layers", "return_sequences", "masked"),
    [(1, True, True), (2, True, True), (2, False, True), (2, True, False)],
    ids=["1-sequences-masked", "2-sequences-masked", "2-last-masked", "2-sequences-unmasked"],
)
@pytest.mark.parametrize("layer", SEQUENCE_LAYER_NAMES)
@pytest.mark.parametrize("name", names_of_kind("stack"))
def test_deep_rnn_matches_a_stack_of_keras_layers(
    name, layer, num_layers, return_sequences, masked
):
    case = REFERENCE_CASES[name]
    ours = case.ours(
        UNITS,
        layer=layer,
        num_layers=num_layers,
        return_sequences=return_sequences,
        return_state=True,
    )
    reference = case.reference(UNITS, layer=layer, num_layers=num_layers)
    x, mask = random_array(8, (BATCH, STEPS, FEATURES)), padding_mask() if masked else None
    reference.build(x)
    ours(x)
    case.copy(ours, reference)

    outputs, *states = ours(x, mask=mask)
    sequence, expected_states = reference(x, mask=mask)
    per_layer = len(ours.stack[0].state_size)
    # The flat state list: every layer's states, bottom first ([h1, c1, h2, c2] for LSTMs).
    assert len(states) == num_layers * per_layer == len(ours.state_size)
    assert_close(states, expected_states)
    top_h = expected_states[-per_layer]
    if return_sequences:
        valid = padding_mask()[:, :, None] if masked else True
        assert_close(outputs, np.where(valid, np.asarray(sequence), 0.0))
    else:
        assert_close(outputs, top_h)


@pytest.mark.parametrize("layer", SEQUENCE_LAYER_NAMES)
@pytest.mark.parametrize("name", names_of_kind("stack"))
def test_deep_rnn_initial_state_is_the_flat_state_list(name, layer):
    case = REFERENCE_CASES[name]
    ours = case.ours(UNITS, layer=layer, num_layers=2, return_sequences=True, return_state=True)
    reference = case.reference(UNITS, layer=layer, num_layers=2)
    x, mask = random_array(9, (BATCH, STEPS, FEATURES)), padding_mask()
    reference.build(x)
    ours(x)
    case.copy(ours, reference)
    initial_state = [
        random_array(20 + index, (BATCH, size)) for index, size in enumerate(ours.state_size)
    ]

    outputs, *states = ours(x, mask=mask, initial_state=initial_state)
    sequence, expected_states = reference(x, mask=mask, initial_state=initial_state)
    assert_close(states, expected_states)
    assert_close(outputs, np.where(padding_mask()[:, :, None], np.asarray(sequence), 0.0))


# --------------------------------------------------------------------------- bidirectional


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("layer", SEQUENCE_LAYER_NAMES)
@pytest.mark.parametrize("name", names_of_kind("bidirectional"))
def test_bidirectional_matches_keras_at_valid_steps(name, layer, merge_mode):
    case = REFERENCE_CASES[name]
    options = {"layer": layer, "merge_mode": merge_mode, "return_sequences": True}
    ours, reference = case.ours(UNITS, **options), case.reference(UNITS, **options)
    x, mask = random_array(11, (BATCH, STEPS, FEATURES)), padding_mask()
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)

    outputs, expected = np.asarray(ours(x, mask=mask)), np.asarray(reference(x, mask=mask))
    assert outputs.shape == (BATCH, STEPS, UNITS * (2 if merge_mode == "concat" else 1))
    valid = padding_mask()
    assert_close(outputs[valid], expected[valid])
    assert not np.any(outputs[~valid]), "padded steps must output zeros"
    # Unmasked, every step matches.
    assert_close(ours(x), reference(x))


@pytest.mark.parametrize("with_initial_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("layer", SEQUENCE_LAYER_NAMES)
@pytest.mark.parametrize("name", names_of_kind("bidirectional"))
def test_bidirectional_last_output_and_states_match_keras(name, layer, with_initial_state):
    case = REFERENCE_CASES[name]
    options = {"layer": layer, "return_sequences": False, "return_state": True}
    ours, reference = case.ours(UNITS, **options), case.reference(UNITS, **options)
    x, mask = random_array(12, (BATCH, STEPS, FEATURES)), padding_mask()
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)
    initial_state = (
        [random_array(30 + index, (BATCH, size)) for index, size in enumerate(ours.state_size)]
        if with_initial_state
        else None
    )

    result = ours(x, mask=mask, initial_state=initial_state)
    assert len(result) == 1 + len(ours.state_size)  # [outputs, *forward states, *backward states]
    assert_close(result, reference(x, mask=mask, initial_state=initial_state))


# --------------------------------------------------------------------------- masking


RECURRENT_NAMES = [
    name
    for name in BUILTIN_NAMES
    if name in REFERENCE_CASES
    and REFERENCE_CASES[name].kind in ("sequence", "stack", "bidirectional")
]


@pytest.mark.parametrize("name", RECURRENT_NAMES)
def test_padding_keeps_the_state_of_the_last_valid_step(name):
    """A padded sequence gives the outputs and state of the unpadded shorter sequence."""
    layer = REFERENCE_CASES[name].make()
    x, mask = random_array(13, (BATCH, STEPS, FEATURES)), padding_mask()
    garbage = random_array(14, x.shape, scale=10.0)
    padded = np.where(mask[:, :, None], x, garbage)
    layer(padded)
    randomize(layer)

    outputs, *states = layer(padded, mask=mask)
    outputs, states = np.asarray(outputs), [np.asarray(state) for state in states]
    for row, length in enumerate(LENGTHS):
        alone_outputs, *alone_states = layer(x[row : row + 1, :length])
        assert_close(outputs[row : row + 1, :length], alone_outputs)
        assert_close([state[row : row + 1] for state in states], alone_states)
        assert not np.any(outputs[row, length:]), "padded steps must output zeros"


# --------------------------------------------------------------------------- feedforward


@pytest.mark.parametrize("name", names_of_kind("feedforward"))
def test_feedforward_layer_matches_keras(name):
    case = REFERENCE_CASES[name]
    ours, reference = case.make(), case.reference(**case.example)
    x = random_array(15, (BATCH, FEATURES))
    reference(x)
    randomize(reference)
    ours(x)
    case.copy(ours, reference)
    assert_close(ours(x), reference(x))


# --------------------------------------------------------------------------- attention


def attention_pair(name, **options):
    """Our attention layer with the NumPy reference's weights, and the reference."""
    case = REFERENCE_CASES[name]
    ours, reference = case.ours(UNITS, **options), case.reference(UNITS, **options)
    query, keys, values, _ = attention_sample(ours, seed=16)
    reference(query, keys, values)
    ours(query, keys, values)
    case.copy(ours, reference)
    return ours, reference


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("name", names_of_kind("attention"))
def test_attention_matches_numpy(name, masked):
    ours, reference = attention_pair(name)
    query, keys, values, mask = attention_sample(ours, seed=17)
    key_mask = mask if masked else None

    context, weights = ours(query, keys, values, key_mask=key_mask, return_attention_scores=True)
    assert tuple(context.shape) == (BATCH, QUERIES, VALUE_FEATURES)
    assert tuple(weights.shape) == (BATCH, QUERIES, STEPS)
    assert_close([context, weights], reference(query, keys, values, key_mask=key_mask))
    assert_close(ours(query, keys, values, key_mask=key_mask), context)


@pytest.mark.parametrize("name", names_of_kind("attention"))
def test_attention_gives_masked_keys_no_weight(name):
    ours, _ = attention_pair(name)
    query, keys, values, mask = attention_sample(ours, seed=18)
    _, weights = ours(query, keys, values, key_mask=mask, return_attention_scores=True)
    weights = np.asarray(weights)
    masked_keys = np.broadcast_to(~mask[:, None, :], weights.shape)
    assert np.all(weights[masked_keys] < 1e-6)
    assert np.all(weights[~masked_keys] > 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=ATOL)


# A row with a single valid key is a softmax over one key, which Keras warns about.
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1:UserWarning")
@pytest.mark.parametrize("name", names_of_kind("attention"))
def test_attention_ignores_the_keys_and_values_at_masked_positions(name):
    """Padded keys and values change nothing: each row is attention over its valid keys."""
    ours, _ = attention_pair(name)
    query, keys, values, mask = attention_sample(ours, seed=19)
    garbage_keys = np.where(mask[:, :, None], keys, random_array(20, keys.shape, scale=10.0))
    garbage_values = np.where(mask[:, :, None], values, random_array(21, values.shape, scale=10.0))

    context = np.asarray(ours(query, garbage_keys, garbage_values, key_mask=mask))
    assert_close(context, ours(query, keys, values, key_mask=mask))
    for row, length in enumerate(LENGTHS):
        alone = ours(
            query[row : row + 1], keys[row : row + 1, :length], values[row : row + 1, :length]
        )
        assert_close(context[row : row + 1], alone)


@pytest.mark.parametrize("name", names_of_kind("attention"))
def test_attention_dropout_acts_on_the_weights_only_while_training(name):
    ours, _ = attention_pair(name, dropout=0.5)
    without_dropout, _ = attention_pair(name)
    query, keys, values, mask = attention_sample(ours, seed=22)
    expected = np.asarray(without_dropout(query, keys, values, key_mask=mask))
    assert_close(ours(query, keys, values, key_mask=mask), expected)
    assert_close(ours(query, keys, values, key_mask=mask, training=False), expected)
    training = np.asarray(ours(query, keys, values, key_mask=mask, training=True))
    assert not np.allclose(training, expected, atol=1e-3)


# --------------------------------------------------------------------------- every layer


def built_example(name, seed=0):
    case = case_for(name)
    layer = case.make()
    arrays = case.sample(layer, seed)
    case.apply(layer, arrays)
    randomize(layer)
    return case, layer, arrays


def constructor_arguments(cls):
    """Every argument of cls.__init__, following **kwargs into zoo base classes and, for
    sequence layers, into the cell's constructor (where Recurrent sends them)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass.__module__.startswith("zoo."):
            names |= set(inspect.signature(klass.__init__).parameters)
    if issubclass(cls, Recurrent):
        names |= constructor_arguments(cls.cell_class)
    return names - {"self", "args", "kwargs"}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_config_keys_are_the_constructor_arguments(name):
    _, layer, _ = built_example(name)
    assert set(layer.get_config()) == constructor_arguments(type(layer)) | BASE_LAYER_KEYS


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_from_config_gives_identical_outputs(name):
    case, layer, arrays = built_example(name)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    case.apply(clone, arrays)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config
    assert_identical(case.apply(clone, arrays), case.apply(layer, arrays))


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path):
    case, layer, arrays = built_example(name)
    inputs = [keras.Input(array.shape[1:], dtype=array.dtype.name) for array in arrays]
    model = keras.Model(inputs, keras.tree.flatten(case.apply(layer, inputs)))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)

    assert type(loaded.get_layer(layer.name)) is type(layer)
    assert_identical(loaded(arrays), model(arrays))


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_one_training_step_changes_every_trainable_weight(name):
    case, layer, arrays = built_example(name)
    variables = layer.trainable_variables
    assert variables, f"{name} has no trainable weights"
    before = [variable.numpy() for variable in variables]
    targets = [
        random_array(40 + index, output.shape)
        for index, output in enumerate(flat(case.apply(layer, arrays)))
    ]

    with tf.GradientTape() as tape:
        outputs = keras.tree.flatten(case.apply(layer, arrays))
        loss = sum(
            keras.ops.mean(keras.ops.square(output - target))
            for output, target in zip(outputs, targets, strict=True)
        )
    gradients = tape.gradient(loss, variables)
    assert all(gradient is not None for gradient in gradients)
    keras.optimizers.SGD(learning_rate=0.1).apply(gradients, variables)

    unchanged = [
        v.path for v, old in zip(variables, before, strict=True) if np.array_equal(v.numpy(), old)
    ]
    assert not unchanged, f"weights not trained: {unchanged}"
