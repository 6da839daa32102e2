"""What benchmarks/learning_parity.py found, kept: an embedding's sparse gradient updates
the weights exactly as the same gradient made dense does (PyTorch's dense update); a
recipe's ``train.epsilon`` is added where PyTorch adds it; word-level models start from
PyTorch's initializers, character-level ones from Keras', and a recipe's choice of
initializer reaches the embedding, the output layer and each recurrent layer."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import initializers
from zoo.models import LanguageModel
from zoo.recipe import RecipeError, validate
from zoo.tasks.language_modeling import LANGUAGE_MODEL_INITIALIZERS, LanguageModeling
from zoo.training.optimizers import OPTIMIZERS, summed_rows
from zoo.training.trainer import make_optimizer


def repeated_rows():
    """An embedding-like gradient of a [5, 3] table: row 0 read three times, row 2 once
    (the rows of a word read three times in a batch point the same way, as they do)."""
    values = tf.constant(
        [[1.0, 2.0, -1.0], [0.5, 1.0, -0.5], [2.0, 1.0, 0.0], [1.0, 1.0, -1.0]], tf.float32
    )
    return tf.IndexedSlices(values, tf.constant([0, 0, 2, 0]), tf.constant([5, 3]))


def test_summed_rows_adds_the_rows_of_each_index_and_leaves_dense_gradients_alone():
    summed = summed_rows(repeated_rows())
    assert sorted(summed.indices.numpy().tolist()) == [0, 2]
    np.testing.assert_allclose(
        tf.convert_to_tensor(summed).numpy(), tf.convert_to_tensor(repeated_rows()).numpy()
    )
    dense = tf.ones((2, 2))
    assert summed_rows(dense) is dense
    assert summed_rows(None) is None


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("clip_norm", [None, 0.5])
def test_a_sparse_gradient_updates_the_weights_as_the_dense_one_does(name, clip_norm):
    after = []
    for gradient in (repeated_rows(), tf.convert_to_tensor(repeated_rows())):
        weights = keras.Variable(np.zeros((5, 3), np.float32))
        optimizer = OPTIMIZERS[name](learning_rate=0.1, global_clipnorm=clip_norm)
        for _ in range(3):  # the moments carry over from step to step
            optimizer.apply([gradient], [weights])
        after.append(weights.numpy())
    assert np.abs(after[0]).max() > 0  # the gradient moved the weights
    np.testing.assert_allclose(after[0], after[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("clip_norm", [None, 0.01])
def test_a_language_model_step_moves_its_embedding_as_dense_adam_does(clip_norm):
    """The language model's own training step (state carried, as the sequential sampler
    trains) with the recipe's optimizer against Keras' Adam given the dense gradient:
    unclipped, Adam's second moment must square the summed rows; clipped (0.01 always
    clips here), the global norm must be the dense gradient's."""
    keras.utils.set_random_seed(0)
    model = LanguageModel(7, [{"name": "lstm", "units": 4}], embedding_dim=3)
    tokens = tf.constant([[1, 1, 1, 2, 1], [1, 3, 1, 1, 4]], tf.int32)  # token 1 read often
    targets = tf.roll(tokens, -1, axis=1)
    model(tokens)
    train = {
        "optimizer": "adam",
        "learning_rate": 0.05,
        "clip_norm": clip_norm,
        "weight_decay": 0.0,
        "weight_averaging": None,
        "lr_schedule": "constant",
    }
    model.compile(
        optimizer=make_optimizer(train),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.carry_states(2)
    start = [variable.numpy() for variable in model.trainable_variables]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(tokens, training=True)
        value = loss(targets, logits)
    grads = tape.gradient(value, model.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)  # the embedding's: one row per token read
    dense = [tf.convert_to_tensor(grad) for grad in grads]

    reference = [keras.Variable(weights) for weights in start]
    keras.optimizers.Adam(learning_rate=0.05, global_clipnorm=clip_norm).apply(dense, reference)
    model.train_on_batch(tokens, targets)
    embedding = model.embedding.embeddings
    index = [variable.path for variable in model.trainable_variables].index(embedding.path)
    assert not np.allclose(embedding.numpy(), start[index])
    np.testing.assert_allclose(embedding.numpy(), reference[index].numpy(), rtol=1e-5, atol=1e-6)


def paper_adam(gradient, steps, learning_rate, epsilon, beta_1=0.9, beta_2=0.999):
    """Adam as the paper's Algorithm 1 and PyTorch write it: ε added to √v̂."""
    weights, m, v = np.zeros_like(gradient), np.zeros_like(gradient), np.zeros_like(gradient)
    for step in range(1, steps + 1):
        m = beta_1 * m + (1 - beta_1) * gradient
        v = beta_2 * v + (1 - beta_2) * gradient**2
        m_hat, v_hat = m / (1 - beta_1**step), v / (1 - beta_2**step)
        weights = weights - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    return weights


def test_the_recipe_epsilon_is_added_where_pytorch_adds_it():
    # gradients near ε, where the place of ε shows: Keras' would move them less
    gradient = np.array([[1e-6, -3e-7], [2e-5, 0.0]], np.float32)
    train = {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "clip_norm": None,
        "weight_decay": 0.0,
        "weight_averaging": None,
        "lr_schedule": "constant",
        "epsilon": 1e-6,
    }
    weights = keras.Variable(np.zeros_like(gradient))
    optimizer = make_optimizer(train)
    for _ in range(3):
        optimizer.apply([tf.constant(gradient)], [weights])
    expected = paper_adam(gradient.astype(np.float64), 3, 0.01, 1e-6)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-9)
    restored = type(optimizer).from_config(optimizer.get_config())
    assert restored.bias_corrected_epsilon and restored.epsilon == 1e-6


def test_without_a_recipe_epsilon_adam_is_keras_own():
    train = {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "clip_norm": None,
        "weight_decay": 0.0,
        "weight_averaging": None,
        "lr_schedule": "constant",
        "epsilon": None,
    }
    optimizer = make_optimizer(train)
    assert not optimizer.bias_corrected_epsilon
    assert optimizer.epsilon == keras.optimizers.Adam().epsilon


def language_model_recipe(token_level, **model):
    return validate(
        {
            "name": "parity",
            "task": "language_model",
            "data": {
                "token_level": token_level,
                "preprocess": "lower",
                "line_ends": "eos",
                "num_steps": 4,
            },
            "model": {"embedding_dim": 64, "layers": [{"name": "lstm", "units": 32}], **model},
        }
    )


def built(recipe, vocab_size=300):
    keras.utils.set_random_seed(0)
    return LanguageModeling().build_model(recipe, SimpleNamespace(vocab=range(vocab_size)))


def test_word_level_models_start_from_pytorch_initializers_and_char_level_from_keras():
    words = built(language_model_recipe("word"))
    embedding = words.embedding.embeddings.numpy()
    assert 0.9 < embedding.std() < 1.1  # N(0, 1)
    head = words.head.kernel.numpy()
    assert np.abs(head).max() <= 1 / np.sqrt(32) and head.std() > 0.8 / np.sqrt(3 * 32)
    characters = built(language_model_recipe("char"))
    assert np.abs(characters.embedding.embeddings.numpy()).max() <= 0.05  # U(±0.05)
    glorot = np.sqrt(6 / (32 + 300))
    assert np.abs(characters.head.kernel.numpy()).max() <= glorot
    assert characters.get_config()["embedding_initializer"] == "uniform"


def test_the_recipe_initializers_reach_the_embedding_the_head_and_each_layer():
    recipe = language_model_recipe(
        "word",
        embedding_initializer="uniform",
        head_initializer="glorot_uniform",
        layers=[{"name": "lstm", "units": 32, "kernel_initializer": "fan_in_uniform"}],
    )
    model = built(recipe)
    assert np.abs(model.embedding.embeddings.numpy()).max() <= 0.05
    kernel = model.backbone[0].cell.kernel.numpy()  # [64, 4 * 32]
    assert np.abs(kernel).max() <= 1 / np.sqrt(64) and kernel.std() > 0.8 / np.sqrt(3 * 64)
    config = model.get_config()
    assert (config["embedding_initializer"], config["head_initializer"]) == (
        "uniform",
        "glorot_uniform",
    )
    restored = LanguageModel.from_config(config)
    assert restored.embedding_initializer == "uniform"


@pytest.mark.parametrize("name", LANGUAGE_MODEL_INITIALIZERS)
def test_every_initializer_a_recipe_may_name_resolves(name):
    assert initializers.get(name)((3, 4)).shape == (3, 4)


def test_a_misspelt_initializer_and_an_epsilon_for_sgd_are_recipe_errors():
    with pytest.raises(RecipeError, match=r"^model\.embedding_initializer: expected one of"):
        language_model_recipe("word", embedding_initializer="unit-normal")
    recipe = language_model_recipe("word")
    recipe["train"].update(optimizer="sgd", epsilon=1e-8)
    with pytest.raises(RecipeError, match=r"^train\.epsilon: "):
        validate(recipe)
