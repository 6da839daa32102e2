"""Variational ("locked") dropout of a sequence: one mask per sequence, every step."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LockedDropout(keras.layers.Layer):
    """Dropout with one mask per sequence, shared by all its time steps (Gal & Ghahramani
    2016; the locked dropout of Merity et al. 2017, between the layers of an LSTM):

        y_{b,t,i} = x_{b,t,i} · m_{b,i} / (1 − p),   m_{b,i} ~ Bernoulli(1 − p)

    A unit dropped in a sequence stays dropped at every step of it, so the next layer
    cannot make up for it from neighbouring steps as it can with a fresh mask per step.
    At inference it passes its inputs through.

    Args:
        rate: p, the share of features dropped. Defaults to 0.
        seed: seed of the masks. Defaults to None.

    Shapes: [batch, time, features] → [batch, time, features].

    Example:
        >>> outputs = LockedDropout(0.5)(ops.ones((2, 7, 4)), training=True)
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or not self.rate:
            return inputs
        # (batch, 1, features): broadcast over time
        ones = ops.ones((ops.shape(inputs)[0], 1, ops.shape(inputs)[-1]), dtype=inputs.dtype)
        return inputs * keras.random.dropout(ones, self.rate, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
