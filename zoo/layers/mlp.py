"""A multilayer perceptron, for the sequence-model section's autoregressive model."""

import keras

from zoo.registry import register_layer


@register_layer("mlp")
class MLP(keras.layers.Layer):
    """Fully connected layers: H_j = φ(H_{j-1} W_j + b_j), H_0 = X.

    The chapter's autoregressive model is an MLP on τ lagged values
    x_{t-τ}, ..., x_{t-1}; the task adds the linear output head.

    Args:
        hidden_units: width of each hidden layer. Defaults to [10].
        activation: φ. Defaults to "relu".
        kernel_initializer: initializer of every W_j. Defaults to "glorot_uniform".

    Shapes: [batch, features] → [batch, hidden_units[-1]].

    Example:
        >>> hidden = MLP([10])(ops.ones((8, 4)))
    """

    def __init__(
        self, hidden_units=(10,), activation="relu", kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_units = [int(units) for units in hidden_units]
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense_layers = [
            keras.layers.Dense(
                units,
                activation=self.activation,
                kernel_initializer=self.kernel_initializer,
                name=f"dense_{index}",
            )
            for index, units in enumerate(self.hidden_units)
        ]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs):
        hidden = inputs
        for layer in self.dense_layers:
            hidden = layer(hidden)
        return hidden

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.hidden_units[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
