"""The gated recurrent unit."""

import keras
from keras import ops

from zoo.layers.fused_loops import GRULoop
from zoo.layers.recurrent_cell import RecurrentCell, RecurrentProduct
from zoo.registry import register_layer


@register_layer("gru_cell")
class GRUCell(RecurrentCell):
    """The chapter's GRU, gate order (z, r, h) as in ``keras.layers.GRUCell``:

        R_t = σ(X_t W_xr + H_{t-1} W_hr + b_r)
        Z_t = σ(X_t W_xz + H_{t-1} W_hz + b_z)
        H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t-1}) W_hh + b_h)
        H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t

    The reset gate multiplies H_{t-1} *before* the recurrent product, which is Keras'
    ``reset_after=False``. ``reset_after=True`` gives the cuDNN variant instead,
    H̃_t = tanh(X_t W_xh + b_xh + R_t ⊙ (H_{t-1} W_hh + b_hh)), with a bias of shape
    [2, 3 * units] (input bias, recurrent bias).

    Args: as ``RecurrentCell``, plus
        recurrent_activation: σ. Defaults to "sigmoid".
        reset_after: where the reset gate applies. Defaults to False (the equation).

    Shapes: inputs [batch, features], states [[batch, units]] → H_t [batch, units].

    Example:
        >>> cell = GRUCell(8)
        >>> h, [state] = cell(ops.ones((2, 3)), [ops.zeros((2, 8))])
    """

    num_gates = 3
    fused_loop = GRULoop

    def __init__(self, units, recurrent_activation="sigmoid", reset_after=False, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recurrent_products(self, transposed_gradient=False, kernel=None):
        """One product with the whole kernel (``reset_after``), else two: the gates' W_zr
        and the candidate's W_h, which multiplies R ⊙ H_{t-1} and so comes after them."""
        if self.reset_after:
            return super().recurrent_products(transposed_gradient, kernel)
        kernel = self.recurrent_kernel if kernel is None else kernel
        return [
            RecurrentProduct(part, transposed_gradient)
            for part in ops.split(kernel, [2 * self.units], axis=-1)
        ]

    def fused_loop_applies(self):
        """The written-out loop is the chapter's GRU: reset gate before the product."""
        return not self.reset_after and super().fused_loop_applies()

    def transition(self, projected, states, recurrent_mask=None, products=None):
        products = products or self.recurrent_products()
        (h_prev,) = states
        # The mask reaches the recurrent products; the carry Z ⊙ H_{t-1} keeps H_{t-1}.
        h_in = self.masked(h_prev, recurrent_mask)
        units = self.units
        x_zr, x_h = ops.split(projected, [2 * units], axis=-1)
        if self.reset_after:
            recurrent = products[0](h_in)  # (batch, 3 * units)
            if self.use_bias:
                recurrent = recurrent + self.bias[1]
            zr = self.recurrent_activation(x_zr + recurrent[..., : 2 * units])
            z, r = ops.split(zr, 2, axis=-1)
            candidate = self.activation(x_h + r * recurrent[..., 2 * units :])
        else:
            zr = self.recurrent_activation(x_zr + products[0](h_in))
            z, r = ops.split(zr, 2, axis=-1)
            candidate = self.activation(x_h + products[1](r * h_in))
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after,
            }
        )
        return config
