"""The recipe's optimizers, with weight averaging that warms up.

Keras' own ``use_ema`` averages with a fixed momentum from the first step, so after n
steps the random initial weights still weigh momentum^n: 0.68 after one 76-batch
epoch at 0.995. Here the momentum is min(M, (1 + t) / (10 + t)) at step t, as in
TensorFlow's ``ExponentialMovingAverage(num_updates=t)``: short runs average over
their own recent steps, long ones over about 1 / (1 - M) steps. The first step's
weights start the average.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from zoo.training.distribute import shared_replica_context


def averaging_momentum(momentum, iterations):
    """min(M, (1 + t) / (10 + t)) for step t (a tensor), and 0 at the first step, whose
    weights start the average (its variables start at zero)."""
    step = ops.cast(iterations, "float32")
    warm = ops.minimum(ops.cast(momentum, "float32"), (1.0 + step) / (10.0 + step))
    return ops.where(step > 0, warm, 0.0)


def _with_warmup(base):
    class Averaged(base):
        __doc__ = (
            f"``keras.optimizers.{base.__name__}`` whose weight average warms up, and which "
            "under ``tf.distribute`` sums the replicas' gradients before clipping them."
        )

        _summed = False

        def apply(self, grads, trainable_variables=None):
            # Keras clips each replica's share of the gradient, then sums the shares:
            # the sum is not the whole batch's clipped gradient. Summed first, clipping
            # sees the gradient one process would.
            context = shared_replica_context()
            if context is None:
                return super().apply(grads, trainable_variables)
            grads = list(grads)
            present = [index for index, grad in enumerate(grads) if grad is not None]
            summed = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [grads[index] for index in present]
            )
            for index, grad in zip(present, summed, strict=True):
                grads[index] = grad
            self._summed = True
            try:
                return super().apply(grads, trainable_variables)
            finally:
                self._summed = False

        def _all_reduce_sum_gradients(self, grads_and_vars):
            if self._summed:  # already summed in apply
                return list(grads_and_vars)
            return super()._all_reduce_sum_gradients(grads_and_vars)

        def _update_model_variables_moving_average(self, trainable_variables):
            if not self.use_ema:
                return
            momentum = averaging_momentum(self.ema_momentum, self.iterations)
            pairs = [
                (weight, average)
                for weight, average in zip(
                    trainable_variables, self._model_variables_moving_average, strict=True
                )
                if average is not None
            ]
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
