"""The recipe's optimizers, with weight averaging that warms up.

Keras' own ``use_ema`` averages with a fixed momentum from the first step, so after n
steps the random initial weights still weigh momentum^n: 0.68 after one 76-batch
epoch at 0.995. Here the momentum is min(M, (1 + t) / (10 + t)) at step t, as in
TensorFlow's ``ExponentialMovingAverage(num_updates=t)``: short runs average over
their own recent steps, long ones over about 1 / (1 - M) steps. The first step's
weights start the average.

An embedding's gradient (``tf.IndexedSlices``) holds one row per token read, so a word
read n times in a batch has n rows, g_1 ... g_n, whose sum is the gradient's row. Keras
3 squares the rows as given where it needs the square of their sum: the global norm of
``global_clipnorm`` adds up Σ g_i² (a sixth of the dense norm's square in a batch of
benchmarks/learning_parity.py, a word's rows pointing much the same way), and without
clipping Adam's and RMSprop's second moment takes Σ g_i² too, so words read often took
steps up to √n times too long. (A clipped gradient is dense: scaling densifies it.) The
optimizers here sum the rows of each index first (``summed_rows``) and so update as
the dense gradient does, as PyTorch does.

Keras' Adam adds ε to √v before the bias correction, as in the Adam paper's section 2:
an effective ε/√(1 - β₂^t) in the paper's own algorithm (and PyTorch's), 32 ε at the
first step, 3 ε at the 100th. A weight whose gradient is smaller than that, the rows of
rare words early in training, moves more slowly. With ``bias_corrected_epsilon`` Adam
and AdamW add ε to the bias-corrected √v̂ instead, as PyTorch does (a word-level LSTM's
validation perplexity after its first epoch: 87.6 with Keras' ε, 80.8 in PyTorch).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from zoo.training.distribute import shared_replica_context
from zoo.training.keras_internals import OptimizerHooks


def averaging_momentum(momentum, iterations):
    """min(M, (1 + t) / (10 + t)) for step t (a tensor), and 0 at the first step, whose
    weights start the average (its variables start at zero)."""
    step = ops.cast(iterations, "float32")
    warm = ops.minimum(ops.cast(momentum, "float32"), (1.0 + step) / (10.0 + step))
    return ops.where(step > 0, warm, 0.0)


def summed_rows(gradient):
    """``gradient`` with the rows of each index summed into one, when it is a
    ``tf.IndexedSlices`` (an embedding's: one row per token read); any other gradient
    as it is. Shapes: values [rows, width] → [distinct indices, width]."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    indices, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(indices)[0])
    return tf.IndexedSlices(values, indices, gradient.dense_shape)


def _with_warmup(base):
    class Averaged(OptimizerHooks, base):
        __doc__ = (
            f"``keras.optimizers.{base.__name__}`` whose weight average warms up, which "
            "sums an embedding gradient's rows of each index before using it, and which "
            "under ``tf.distribute`` sums the replicas' gradients before clipping them."
        )

        def __init__(self, *args, bias_corrected_epsilon=False, **kwargs):
            super().__init__(*args, **kwargs)
            self.bias_corrected_epsilon = bias_corrected_epsilon

        def update_step(self, gradient, variable, learning_rate):
            if not self.bias_corrected_epsilon:
                return super().update_step(gradient, variable, learning_rate)
            # Keras' step divides by √v + ε where the paper's divides by √v̂ + ε, and
            # √v̂ = √v / √(1 - β₂^t): the same step with ε √(1 - β₂^t) in Keras' place.
            epsilon = self.epsilon
            step = ops.cast(self.iterations + 1, variable.dtype)
            beta_2 = ops.cast(self.beta_2, variable.dtype)
            self.epsilon = epsilon * ops.sqrt(1.0 - ops.power(beta_2, step))
            try:
                return super().update_step(gradient, variable, learning_rate)
            finally:
                self.epsilon = epsilon

        def get_config(self):
            return {**super().get_config(), "bias_corrected_epsilon": self.bias_corrected_epsilon}

        def apply(self, grads, trainable_variables=None):
            context = shared_replica_context()
            if context is None:
                return super().apply([summed_rows(grad) for grad in grads], trainable_variables)
            # Keras clips each replica's share of the gradient, then sums the shares:
            # the sum is not the whole batch's clipped gradient. Summed first, clipping
            # sees the gradient one process would.
            grads = list(grads)
            present = [index for index, grad in enumerate(grads) if grad is not None]
            summed = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [grads[index] for index in present]
            )
            for index, grad in zip(present, summed, strict=True):
                grads[index] = summed_rows(grad)  # the replicas' rows are gathered, not added
            with self.replicas_already_summed():
                return super().apply(grads, trainable_variables)

        def update_weight_averages(self, pairs):
            momentum = averaging_momentum(self.ema_momentum, self.iterations)
            context = shared_replica_context()
            if context is None:
                for weight, average in pairs:
                    rate = ops.cast(momentum, weight.dtype)
                    average.assign(rate * average + (1.0 - rate) * weight)
                return

            def update(average, weight, rate):
                return average.assign(rate * average + (1.0 - rate) * weight)

            def merged(distribution, pairs, rate):
                for weight, average in pairs:
                    distribution.extended.update(
                        average.value, update, args=(weight.value, rate), group=False
                    )

            context.merge_call(merged, args=(pairs, ops.cast(momentum, "float32")))

    Averaged.__name__ = Averaged.__qualname__ = base.__name__
    # Saved as "zoo>Adam" etc.: last.keras and model.keras name the optimizer they need.
    return keras.saving.register_keras_serializable(package="zoo")(Averaged)


OPTIMIZERS = {
    name: _with_warmup(base)
    for name, base in {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }.items()
}
