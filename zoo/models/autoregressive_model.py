"""The sequence-model section's autoregressive model on τ lagged values."""

import keras

from zoo import registry
from zoo.models.presets import PresetModel


@keras.saving.register_keras_serializable(package="zoo")
class AutoregressiveModel(PresetModel, keras.Model):
    """x̂_t = f(x_{t-τ}, ..., x_{t-1}): the Markov (τ-lag) assumption, f a stack of
    registered layers (the chapter uses an MLP) with a linear output.

    Args:
        layers: recipe entries, ``[{"name": "mlp", "hidden_units": [10]}]``.

    Shapes: features [batch, τ] → prediction [batch, 1].
    """

    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.layer_specs = [dict(spec) for spec in layers]
        self.body = [registry.build_layer(spec) for spec in self.layer_specs]
        self.head = keras.layers.Dense(1, name="head")

    def call(self, features, training=None):
        hidden = features
        for layer in self.body:
            hidden = layer(hidden, training=training)
        return self.head(hidden)

    def get_config(self):
        config = super().get_config()
        config.update({"layers": self.layer_specs})
        return config
