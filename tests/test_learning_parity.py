"""What benchmarks/learning_parity.py found, kept: an embedding's sparse gradient updates
the weights exactly as the same gradient made dense does (PyTorch's dense update)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.models import LanguageModel
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
