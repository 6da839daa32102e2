"""Stacked recurrent layers."""

import keras

from zoo import registry
from zoo.layers.recurrent_cell import RecurrentCell
from zoo.layers.sequence_layer import SequenceLayer
from zoo.registry import register_layer


def sequence_layer(layer_name, units, layer_kwargs, /, **overrides):
    """Builds the registered sequence layer ``layer_name`` (``rnn``, ``gru``, ``lstm``, ...)."""
    layer_class = registry.layers.get(layer_name)
    if issubclass(layer_class, RecurrentCell) or not hasattr(layer_class, "state_size"):
        raise ValueError(
            f"layer '{layer_name}' is not a sequence layer (rnn, gru, lstm, deep_rnn, ...)"
        )
    return layer_class(units, **{**(layer_kwargs or {}), **overrides})


@register_layer("deep_rnn")
class DeepRNN(SequenceLayer):
    """L stacked recurrent layers: H^j_t = f_j(H^j_{t-1}, H^{j-1}_t), with H^0_t = X_t.

    Layer j reads the output sequence of layer j − 1; dropout, when set, applies
    between layers during training. Follows the ``Recurrent`` call contract; its state
    is the flat concatenation of every layer's state, bottom layer first
    ([h_1, h_2] for GRUs, [h_1, c_1, h_2, c_2] for LSTMs), in ``initial_state`` too.

    Args:
        units: hidden size of every layer.
        layer: registered name of the sequence layer to stack. Defaults to "gru".
        num_layers: L. Defaults to 2.
        dropout: dropout rate between layers. Defaults to 0.
        return_sequences: return every step of the top layer. Defaults to False.
        return_state: also return the final states. Defaults to False.
        layer_kwargs: further keyword arguments of each layer. Defaults to None.

    Shapes: inputs [batch, time, features], mask [batch, time] → [batch, time, units].

    Example:
        >>> outputs, h1, h2 = DeepRNN(16, layer="gru", return_state=True)(ops.ones((2, 5, 3)))
    """

    def __init__(
        self,
        units,
        layer="gru",
        num_layers=2,
        dropout=0.0,
        return_sequences=False,
        return_state=False,
        layer_kwargs=None,
        **kwargs,
    ):
        super().__init__(return_sequences, return_state, **kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.units = units
        self.layer = layer
        self.num_layers = num_layers
        self.dropout = dropout
        self.layer_kwargs = dict(layer_kwargs or {})
        self.stack = [
            sequence_layer(
                layer,
                units,
                self.layer_kwargs,
                return_sequences=True,
                return_state=True,
                name=f"layer_{index}",
            )
            for index in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout) if dropout else None

    @property
    def output_units(self):
        return self.units

    @property
    def state_size(self):
        return [size for layer in self.stack for size in layer.state_size]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)[0]

    def get_initial_state(self, batch_size):
        return [state for layer in self.stack for state in layer.get_initial_state(batch_size)]

    def call(self, inputs, mask=None, initial_state=None, training=None):
        sequence, final_states, offset = inputs, [], 0
        for index, layer in enumerate(self.stack):
            if index and self.dropout_layer is not None:
                sequence = self.dropout_layer(sequence, training=training)
            width = len(layer.state_size)
            states = None if initial_state is None else list(initial_state[offset : offset + width])
            sequence, *layer_states = layer(sequence, mask=mask, initial_state=states)
            final_states += layer_states
            offset += width
        top_h = final_states[-len(self.stack[-1].state_size)]
        return self.package_outputs(sequence, top_h, final_states)

    def step(self, inputs, states):
        hidden, new_states, offset = inputs, [], 0
        for layer in self.stack:
            width = len(layer.state_size)
            hidden, layer_states = layer.step(hidden, states[offset : offset + width])
            new_states += layer_states
            offset += width
        return hidden, new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "layer": self.layer,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "layer_kwargs": self.layer_kwargs,
            }
        )
        return config
