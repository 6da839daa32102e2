"""The encoder–decoder models below the translator task: the decoder's one-token step
against teacher forcing, and training the output layer with a sampled softmax."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo.models import Translator

SRC_VOCAB, TGT_VOCAB = 30, 40


def make_translator(
    attention=True,
    cell="gru_cell",
    encoder=None,
    sampled_softmax=0,
    deep_output=False,
    embedding_dropout=0.0,
    tie_embeddings=False,
):
    model = Translator(
        SRC_VOCAB,
        TGT_VOCAB,
        embedding_dim=12 if tie_embeddings else 8,  # tying needs units == embedding_dim
        encoder=encoder or {"name": "deep_rnn", "layer": "gru", "units": 12, "num_layers": 2},
        decoder={
            "cell": cell,
            "units": 12,
            "num_layers": 2,
            "deep_output": deep_output,
            "tie_embeddings": tie_embeddings,
        },
        attention={"name": "additive_attention", "units": 10} if attention else None,
        sampled_softmax=sampled_softmax,
        embedding_dropout=embedding_dropout,
    )
    model((np.ones((1, 5), "int32"), np.array([5]), np.ones((1, 4), "int32")))
    return model


def random_batch(rng, batch=6, src_time=7, tgt_time=5):
    source = rng.integers(1, SRC_VOCAB, (batch, src_time)).astype("int32")
    lengths = rng.integers(2, src_time + 1, batch).astype("int32")
    source[np.arange(src_time)[None, :] >= lengths[:, None]] = 0
    decoder_input = rng.integers(1, TGT_VOCAB, (batch, tgt_time)).astype("int32")
    return source, lengths, decoder_input


@pytest.mark.parametrize(
    "attention, cell, encoder, deep_output, tie_embeddings",
    [
        (True, "gru_cell", None, False, False),
        (False, "gru_cell", None, False, False),
        (True, "lstm_cell", None, False, False),
        (True, "gru_cell", {"name": "bidirectional", "layer": "gru", "units": 6}, False, False),
        (True, "gru_cell", None, True, False),
        (False, "lstm_cell", None, True, False),
        (True, "gru_cell", None, True, True),
    ],
    ids=[
        "attention",
        "no-attention",
        "lstm-cells",
        "bidirectional-bridge",
        "deep-output",
        "deep-output-no-attention",
        "tied-embeddings",
    ],
)
def test_one_token_steps_reproduce_teacher_forcing(
    attention, cell, encoder, deep_output, tie_embeddings
):
    """Decoding token by token (what beam search and the exported decode_step run) gives
    the log-probabilities of the teacher-forced pass, with or without precomputed keys."""
    model = make_translator(
        attention, cell, encoder, deep_output=deep_output, tie_embeddings=tie_embeddings
    )
    source, lengths, decoder_input = random_batch(np.random.default_rng(0))
    expected = ops.convert_to_numpy(
        ops.log_softmax(model((source, lengths, decoder_input)), axis=-1)
    )
    memory, memory_mask, states, context = model.run_encoder(source, lengths)
    keys = model.decoder.memory_keys(memory)
    assert (keys is None) == (not attention)
    for precomputed in (keys, None):
        step_states = list(states)
        for t in range(decoder_input.shape[1]):
            log_probs, step_states = model.decoder.step(
                decoder_input[:, t], step_states, memory, memory_mask, context, precomputed
            )
            np.testing.assert_allclose(log_probs, expected[:, t], atol=1e-5)


def test_sampled_softmax_loss_ignores_padding():
    model = make_translator(sampled_softmax=8)
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(4, 6, 12)).astype("float32")
    targets = rng.integers(1, TGT_VOCAB, (4, 6)).astype("int32")
    targets[:, 4:] = 0
    changed = hidden.copy()
    changed[:, 4:] = 100.0  # whatever the decoder says at padded steps
    tf.random.set_seed(3)
    loss = float(model.sampled_softmax_loss(hidden, targets))
    tf.random.set_seed(3)
    assert float(model.sampled_softmax_loss(changed, targets)) == pytest.approx(loss, rel=1e-6)
    assert np.isfinite(loss) and loss > 0


def copy_task(rng, size=512):
    """Target = source, a task a small translator learns in a few epochs."""
    source = rng.integers(3, SRC_VOCAB, (size, 5)).astype("int32")
    target = np.concatenate([source, np.full((size, 1), 2, "int32")], axis=1)  # + <eos>
    decoder_input = np.concatenate([np.ones((size, 1), "int32"), target[:, :-1]], axis=1)
    lengths = np.full(size, 5, "int32")
    return tf.data.Dataset.from_tensor_slices(((source, lengths, decoder_input), target)).batch(32)


@pytest.mark.slow  # ten epochs; the loss and its gradients are checked by the fast tests
def test_a_sampled_softmax_trains_the_full_softmax_model():
    """Trained on 8 sampled words of 40 a step, the model's full-softmax loss falls."""
    keras.utils.set_random_seed(0)
    model = make_translator(sampled_softmax=8)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    data = copy_task(np.random.default_rng(0))
    before = model.evaluate(data, verbose=0)
    history = model.fit(data, epochs=10, shuffle=False, verbose=0).history
    after = model.evaluate(data, verbose=0)
    assert all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert after < before - 0.75  # nats per token, from ln(40) = 3.7 (full softmax: -1.4)


def test_sampled_softmax_survives_saving(tmp_path):
    model = make_translator(sampled_softmax=8)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.sampled_softmax == 8
    batch = random_batch(np.random.default_rng(2))
    np.testing.assert_allclose(loaded(batch), model(batch), atol=1e-6)


def test_the_training_loss_ignores_padded_targets():
    """The full-softmax loss the translator task compiles: logits at <pad> targets
    (id 0) change nothing, and the mean is over the real tokens only."""
    from zoo.tasks.translation import Translation

    loss = Translation().loss()
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 5, TGT_VOCAB)).astype("float32")
    targets = rng.integers(1, TGT_VOCAB, (3, 5)).astype("int32")
    targets[0, 3:] = 0
    targets[2, 1:] = 0
    changed = logits.copy()
    changed[targets == 0] = rng.normal(size=(int((targets == 0).sum()), TGT_VOCAB)) * 50
    value = float(loss(targets, logits))
    assert float(loss(targets, changed)) == pytest.approx(value, rel=1e-6)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    assert value == pytest.approx(-picked[targets != 0].mean(), rel=1e-5)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "no-attention"])
def test_deep_output_predicts_from_the_state_and_the_context(attention):
    """o_t = tanh([s^L_t; c_t] W_o + b_o), checked against the decoder's own pieces: the
    top state from the plain recurrence, c_t the attention read from s^L_{t-1} (or the
    fixed context)."""
    model = make_translator(attention=attention, deep_output=True)
    decoder = model.decoder
    source, lengths, decoder_input = random_batch(np.random.default_rng(2))
    memory, memory_mask, states, fixed = model.run_encoder(source, lengths)
    logits = ops.convert_to_numpy(model((source, lengths, decoder_input)))
    step_states = list(states)
    for t in range(decoder_input.shape[1]):
        query = step_states[decoder.top_state_index]
        if attention:
            context = decoder.attention_layer(
                query[:, None, :], memory, memory, key_mask=memory_mask
            )[:, 0, :]
        else:
            context = fixed
        projected = decoder.project_embedded(decoder.embedding(decoder_input[:, t]))
        projected = projected + decoder.project_context(context)
        hidden = projected
        new_states, offset = [], 0
        for index, cell in enumerate(decoder.cells):
            width = len(cell.state_size)
            cell_states = step_states[offset : offset + width]
            if index == 0:
                hidden, cell_states = cell.transition(hidden, cell_states)
            else:
                hidden, cell_states = cell(hidden, cell_states)
            new_states += cell_states
            offset += width
        step_states = new_states
        projection = decoder.output_projection
        joined = np.concatenate([hidden, context], axis=-1)
        expected_output = np.tanh(joined @ projection.kernel.numpy() + projection.bias.numpy())
        expected = expected_output @ decoder.head.kernel.numpy() + decoder.head.bias.numpy()
        np.testing.assert_allclose(logits[:, t], expected, atol=1e-5)


def test_deep_output_survives_saving(tmp_path):
    model = make_translator(deep_output=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.decoder.deep_output and loaded.decoder.output_projection is not None
    inputs = random_batch(np.random.default_rng(4))
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)


@pytest.mark.slow
def test_embedding_dropout_acts_on_both_embeddings_only_while_training(tmp_path):
    """Inference ignores it (so decoding steps still match teacher forcing); training
    drops whole-embedding features on each side; the setting survives saving."""
    model = make_translator(embedding_dropout=0.5)
    inputs = random_batch(np.random.default_rng(5))
    plain = make_translator()
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model(inputs), plain(inputs), atol=1e-6)
    assert not np.allclose(model(inputs, training=True), plain(inputs), atol=1e-3)

    source, lengths, decoder_input = inputs
    embedded = model.encoder.embedding(source)
    dropped = model.encoder.embedding_dropout_layer(embedded, training=True)
    kept = ops.convert_to_numpy(dropped) != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(ops.convert_to_numpy(dropped)[kept], 2 * embedded.numpy()[kept])
    assert model.decoder.embedding_dropout == 0.5

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.encoder.embedding_dropout == loaded.decoder.embedding_dropout == 0.5
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)


@pytest.mark.slow
def test_tied_embeddings_predict_with_the_target_embedding(tmp_path):
    """logits = o_t E^T + b with E the decoder's input embedding: one variable, no
    separate head; the sampled softmax trains E through the output side too; the
    setting survives saving; units != embedding_dim is refused."""
    model = make_translator(deep_output=True, tie_embeddings=True)
    decoder = model.decoder
    assert decoder.head is None
    assert not any("head/kernel" in variable.path for variable in model.weights)
    inputs = random_batch(np.random.default_rng(6))
    outputs = ops.convert_to_numpy(model.decoder_hidden(inputs))
    table = decoder.embedding.embeddings.numpy()
    expected = outputs @ table.T + decoder.head_bias.numpy()
    np.testing.assert_allclose(model(inputs), expected, atol=1e-5)
    weights, biases = decoder.output_weights()
    assert weights is decoder.embedding.embeddings and biases is decoder.head_bias

    # one sampled-softmax step moves E even when the decoder input holds no target word
    source, lengths, _ = inputs
    decoder_input = np.ones_like(inputs[2])  # only id 1 is embedded
    targets = np.full_like(decoder_input, 7)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.sampled_softmax = 8
    batch = tf.data.Dataset.from_tensors(((source, lengths, decoder_input), targets))
    model.fit(batch, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(decoder.embedding.embeddings.numpy()[7], table[7])

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.decoder.tie_embeddings and loaded.decoder.head is None
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)

    with pytest.raises(ValueError, match="tie_embeddings needs the decoder's units"):
        Translator(
            SRC_VOCAB,
            TGT_VOCAB,
            embedding_dim=8,
            encoder={"name": "deep_rnn", "layer": "gru", "units": 12, "num_layers": 2},
            decoder={"units": 12, "tie_embeddings": True},
        )
