"""Word-level language-model features (tied embeddings, embedding and locked dropout, the
plateau schedule) and the lm-word-* recipes on a user's three word-level files."""

import json
import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.layers.embedding_dropout import EmbeddingDropout
from zoo.layers.locked_dropout import LockedDropout
from zoo.models import LanguageModel
from zoo.recipe import RecipeError, load_recipe
from zoo.training.callbacks import PlateauDecay

VOCAB, WIDTH, BATCH, STEPS = 11, 6, 3, 5


def tokens(seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(BATCH, STEPS)).astype("int32")


def tiny_model(**options):
    model = LanguageModel(VOCAB, [{"name": "lstm", "units": WIDTH}], embedding_dim=WIDTH, **options)
    model(tokens())
    return model


# ------------------------------------------------------------------- tied embeddings


def test_a_tied_model_has_one_embedding_matrix_used_twice():
    tied, untied = tiny_model(tie_embeddings=True), tiny_model()
    shapes = [tuple(weight.shape) for weight in tied.trainable_weights]
    assert shapes.count((VOCAB, WIDTH)) == 1 and (WIDTH, VOCAB) not in shapes
    assert tied.count_params() == untied.count_params() - WIDTH * VOCAB
    hidden = np.random.default_rng(1).normal(size=(2, WIDTH)).astype("float32")
    tied.head_bias.assign(np.arange(VOCAB, dtype="float32"))
    expected = hidden @ tied.embedding.embeddings.numpy().T + np.arange(VOCAB)
    np.testing.assert_allclose(tied.logits(hidden), expected, rtol=1e-5, atol=1e-5)


def test_training_a_tied_model_moves_the_shared_matrix_by_both_uses(tmp_path):
    model = tiny_model(tie_embeddings=True)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    before = model.embedding.embeddings.numpy().copy()
    # a token never read as input still moves: its row is an output vector too
    inputs = np.zeros((BATCH, STEPS), "int32")
    targets = np.full((BATCH, STEPS), VOCAB - 1, "int32")
    model.train_on_batch(inputs, targets)
    assert not np.allclose(model.embedding.embeddings.numpy()[VOCAB - 1], before[VOCAB - 1])
    model.save(tmp_path / "tied.keras")
    loaded = keras.saving.load_model(tmp_path / "tied.keras")
    np.testing.assert_allclose(loaded(tokens()), model(tokens()), atol=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        {"embedding_dim": 8, "tie_embeddings": True, "layers": [{"name": "lstm", "units": 6}]},
        {"tie_embeddings": True, "layers": [{"name": "lstm", "units": 6}]},
    ],
)
def test_tying_a_mismatched_width_is_one_recipe_line(model, tmp_path):
    path = tmp_path / "tied.yaml"
    path.write_text(json.dumps({"name": "tied", "task": "language_model", "model": model}))
    with pytest.raises(RecipeError, match=r"^model\.tie_embeddings: needs model\.embedding_dim"):
        load_recipe(str(path))


# ------------------------------------------------------------------ dropout layers


def test_embedding_dropout_zeroes_whole_words_in_training_and_nothing_at_inference():
    layer = EmbeddingDropout(VOCAB, 0.5, seed=3)
    ids = np.tile(np.arange(VOCAB, dtype="int32"), (4, 3))  # every word 12 times
    embedded = np.ones((*ids.shape, 4), "float32")
    dropped = layer(embedded, ids, training=True).numpy()
    for word in range(VOCAB):
        rows = dropped[ids == word]  # every place the word occurs
        assert np.all(rows == 0.0) or np.allclose(rows, 2.0), word
    zeroed = [word for word in range(VOCAB) if np.all(dropped[ids == word] == 0.0)]
    assert 0 < len(zeroed) < VOCAB
    np.testing.assert_array_equal(layer(embedded, ids, training=False), embedded)


def test_locked_dropout_keeps_one_mask_over_time_and_nothing_at_inference():
    layer = LockedDropout(0.5, seed=4)
    inputs = np.ones((8, 20, 16), "float32")
    dropped = layer(inputs, training=True).numpy()
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:, :1], dropped.shape))
    assert set(np.unique(dropped)) == {0.0, 2.0}
    assert not np.array_equal(dropped[0, 0], dropped[1, 0])  # one mask per sequence
    np.testing.assert_array_equal(layer(inputs, training=False), inputs)


def test_a_model_with_both_dropouts_is_random_in_training_only():
    model = tiny_model(embedding_dropout=0.5, locked_dropout=0.5)
    ids = tokens()
    np.testing.assert_array_equal(model(ids, training=False), model(ids, training=False))
    assert not np.allclose(model(ids, training=True), model(ids, training=False))
    config = model.get_config()
    assert config["embedding_dropout"] == 0.5 and config["locked_dropout"] == 0.5


# ------------------------------------------------------------------ plateau schedule


def plateau_model(rate):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    return model


def epochs(callback, val_losses, first=0):
    for epoch, val_loss in enumerate(val_losses, start=first):
        callback.on_epoch_end(epoch, {"val_loss": val_loss})


def current_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_the_plateau_schedule_lowers_the_rate_after_a_stall_and_resumes_it():
    state, model = {}, plateau_model(1.0)
    callback = PlateauDecay(state, factor=4.0, patience=2, minimum=0.01)
    callback.set_model(model)
    callback.on_train_begin()
    epochs(callback, [5.0, 4.0, 4.5])  # improving, then one stall: not yet
    assert current_rate(model) == pytest.approx(1.0)
    epochs(callback, [4.2], first=3)  # the second epoch without improving
    assert current_rate(model) == pytest.approx(0.25)
    assert state["plateau"] == {"learning_rate": 0.25, "best_val_loss": 4.0, "stalled_epochs": 0}

    # --resume: state.json read back, the optimizer rebuilt at the recipe's rate
    resumed_state, resumed = json.loads(json.dumps(state)), plateau_model(1.0)
    callback = PlateauDecay(resumed_state, factor=4.0, patience=2, minimum=0.01)
    callback.set_model(resumed)
    callback.on_train_begin()
    assert current_rate(resumed) == pytest.approx(0.25)
    epochs(callback, [4.1, 4.3, 4.4, 4.6], first=4)  # the count goes on from the record
    assert current_rate(resumed) == pytest.approx(0.25 / 16)
    epochs(callback, [4.0, 4.5], first=8)  # equal is no improvement
    assert current_rate(resumed) == pytest.approx(0.01)  # held at the minimum


def test_the_plateau_schedule_keeps_its_rate_while_validation_improves():
    state, model = {}, plateau_model(0.5)
    callback = PlateauDecay(state, factor=4.0, patience=1)
    callback.set_model(model)
    callback.on_train_begin()
    epochs(callback, [3.0, 2.0, 1.0, math.nan])
    assert current_rate(model) == pytest.approx(0.5)


# ------------------------------------------------- the recipes on a user's corpus


def word_files(folder):
    """Three tiny word-level files, already tokenized, with their own <unk>."""
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "<unk>", "N", "and", "to"]
    source = {}
    for split, lines in (("train", 300), ("validation", 40), ("test", 40)):
        text = "\n".join(" ".join(rng.choice(words, size=8)) for _ in range(lines)) + "\n"
        path = folder / f"{split}.txt"
        path.write_text(text, encoding="utf-8")
        source[split] = str(path)
    return source


TINY = [
    "model.embedding_dim=8",
    "model.layers[0].units=8",
    "model.layers[1].units=8",
    "data.batch_size=4",
    "data.num_steps=8",
    "train.epochs=1",
    "export.formats=[]",
]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["lm-word-lstm", "lm-word-lstm-large"])
def test_a_word_recipe_trains_and_evaluates_on_three_files_via_set(recipe, tmp_path):
    source = word_files(tmp_path)
    out = tmp_path / "run"
    args = ["run", "recipe", recipe, "--out", str(out)]
    for item in [*(f"data.source.{split}={path}" for split, path in source.items()), *TINY]:
        args += ["--set", item]
    if recipe == "lm-word-lstm-large":
        args += ["--set", "train.epochs=2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab.count("<unk>") == 1 and "<eos>" in vocab and "cat" in vocab
    assert math.isfinite(metrics["perplexity"]) and metrics["perplexity"] > 1.0
    assert metrics["test_tokens"] == 40 * 9  # every word and <eos> of the test file scored
    if recipe == "lm-word-lstm-large":
        state = json.loads((out / "checkpoints/state.json").read_text())
        assert state["plateau"]["learning_rate"] <= 20.0


def test_existing_language_model_recipes_leave_the_features_off():
    for name in ("lm-lstm", "lm-gru", "lm-rnn", "lm-deep-lstm"):
        model = load_recipe(name)["model"]
        assert model["tie_embeddings"] is False
        assert model["embedding_dropout"] == 0.0 and model["locked_dropout"] == 0.0
        assert load_recipe(name)["train"]["lr_schedule"] in ("constant", "cosine")
