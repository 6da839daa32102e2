"""The base class of the chapter's recurrent cells."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from zoo.layers import initializers
from zoo.layers.fused_loops import fused_sequence, worth_fusing

_LAYER_KEYS = ("name", "trainable", "dtype")


class RecurrentProduct:
    """h ↦ h W for one recurrent kernel W, made once per sequence, outside the time loop.

    With ``transposed_gradient`` its gradient for h multiplies by a copy of Wᵀ made here,
    once. TensorFlow's own gradient of ``matmul(h, W)`` is ``matmul(g, W,
    transpose_b=True)`` at every step of the backward loop, which on the CPU runs at a
    third of the speed of a product with a stored Wᵀ (8.1 against 2.7 ms for
    [32, 3072] × [3072, 768]). Without it, a plain product (inference, export).
    """

    def __init__(self, kernel, transposed_gradient=False):
        self.kernel = tf.convert_to_tensor(kernel)
        self.transposed = tf.transpose(self.kernel) if transposed_gradient else None

    def __call__(self, h):
        if self.transposed is None:
            return tf.matmul(h, self.kernel)
        transposed = self.transposed

        @tf.custom_gradient
        def product(h, kernel):
            def gradient(upstream):
                return tf.matmul(upstream, transposed), tf.matmul(h, upstream, transpose_a=True)

            return tf.matmul(h, kernel), gradient

        return product(h, self.kernel)


class RecurrentCell(keras.layers.Layer):
    """One time step of a recurrent network: (x_t, state_{t-1}) → (h_t, state_t).

    A cell's equation splits into a part that depends only on the input,
    ``project_inputs``: x_t W_x + b for every gate at once, and a part that needs the
    previous state, ``transition``. Sequence layers project the whole sequence in one
    matrix product and loop only over ``transition``, which is how fast RNN kernels
    work; ``call`` composes both and is the single step that exports to TFLite.

    Weights use the same layout and gate order as the matching Keras layer, so weights
    copy across unchanged: ``kernel`` [features, num_gates * units],
    ``recurrent_kernel`` [units, num_gates * units], ``bias`` [num_gates * units].

    Args:
        units: size of the hidden state h.
        activation: φ, the activation of the candidate state. Defaults to "tanh".
        use_bias: whether to add b. Defaults to True.
        kernel_initializer: initializer of W_x, a name of ``zoo.layers.initializers``
            or Keras'. Defaults to "glorot_uniform".
        recurrent_initializer: initializer of W_h. Defaults to "orthogonal".
        bias_initializer: initializer of b. Defaults to "zeros".
    """

    num_gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    @property
    def state_size(self):
        """The size of each state tensor: [units] for h alone, [units, units] for (h, c)."""
        return [self.units]

    def build(self, input_shape):
        width = self.num_gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = (
            self.add_weight(
                shape=self.bias_shape(), initializer=self.bias_initializer_for(), name="bias"
            )
            if self.use_bias
            else None
        )

    def bias_shape(self):
        return (self.num_gates * self.units,)

    def bias_initializer_for(self):
        return self.bias_initializer

    def input_bias(self):
        return self.bias

    def project_inputs(self, inputs):
        """x W_x + b for every gate: [..., features] → [..., num_gates * units]."""
        projected = ops.matmul(inputs, self.kernel)
        bias = self.input_bias()
        return projected if bias is None else projected + bias

    def recurrent_products(self, transposed_gradient=False, kernel=None):
        """The cell's recurrent products h ↦ h W (``RecurrentProduct``), one per kernel
        (or kernel slice) its transition multiplies by. A sequence layer makes them once
        per sequence and passes them to every step; ``kernel`` stands in for the
        recurrent kernel (a weight-dropped one while training)."""
        kernel = self.recurrent_kernel if kernel is None else kernel
        return [RecurrentProduct(kernel, transposed_gradient)]

    # The cell's loop with its backward pass written out (a ``fused_loops`` class), if any.
    fused_loop = None
    # The same layer's training pass as native kernels (a ``zoo.layers.native``
    # function of inputs, W_x, b, W_h, states, masks), if any.
    native_layer = None

    def fused_loop_applies(self):
        """Whether ``fused_loop`` is this cell's equation: the class that names the loop
        also defines the transition in use (a subclass with its own step keeps the
        generic loop), with the default activations."""
        owner = next(klass for klass in type(self).__mro__ if "fused_loop" in vars(klass))
        return (
            type(self).transition is owner.transition
            and self.activation is keras.activations.tanh
            and getattr(self, "recurrent_activation", None) is keras.activations.sigmoid
        )

    def native_sequence(self, inputs, states, recurrent_mask=None, mask=None, kernel=None):
        """The whole training pass (input projection, loop, gradients) with the cell's
        native kernels: (outputs, final states), or None when it has none, they do not
        apply (``fused_loop_applies``) or are not available."""
        if self.native_layer is None or not self.fused_loop_applies():
            return None
        kernel = self.recurrent_kernel if kernel is None else kernel
        return type(self).native_layer(
            inputs, self.kernel, self.input_bias(), kernel, states, recurrent_mask, mask
        )

    def fused_sequence(self, projected, states, recurrent_mask=None, mask=None, kernel=None):
        """The whole sequence with its backward pass written out (``fused_loops``), what
        sequence layers run while training; ``kernel`` stands in for the recurrent kernel.
        None (run the generic loop) unless the cell has a ``fused_loop`` that applies and
        its kernel is large enough for it to be faster (``worth_fusing``)."""
        kernel = self.recurrent_kernel if kernel is None else kernel
        if self.fused_loop is None or not self.fused_loop_applies() or not worth_fusing(kernel):
            return None
        return fused_sequence(self.fused_loop, projected, states, kernel, recurrent_mask, mask)

    def transition(self, projected, states, recurrent_mask=None, products=None):
        """(x_t W_x + b, [h_{t-1}, ...]) → (h_t, [h_t, ...]); defined by each cell.

        ``recurrent_mask`` [batch, units], when given, multiplies h_{t-1} where it enters
        the recurrent products (and only there): the variational recurrent dropout of
        Gal & Ghahramani (2016), one mask for every step of a sequence. ``products`` are
        ``recurrent_products()``, made once per sequence; made here when not given.
        """
        raise NotImplementedError

    @staticmethod
    def masked(h_prev, recurrent_mask):
        return h_prev if recurrent_mask is None else h_prev * recurrent_mask

    def call(self, inputs, states):
        """One step: inputs [batch, features], states as ``state_size`` → (h_t, states)."""
        return self.transition(self.project_inputs(inputs), list(states))

    def get_initial_state(self, batch_size):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

    def argument_config(self):
        """The constructor's own arguments, without the base layer's (name, dtype, ...)."""
        return {key: value for key, value in self.get_config().items() if key not in _LAYER_KEYS}
