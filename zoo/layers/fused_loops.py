"""The LSTM's and the GRU's training loops with their backward pass written out
(TensorFlow-specific).

Autodiff of a time loop multiplies by Wᵀ with ``transpose_b`` at every step and adds
each step's kernel-sized gradient into an accumulator: weight-sized products and a
weight-sized sum per step. Here the backward loop multiplies by a Wᵀ stored once, and the
kernel gradient is one product over all steps at the end (for the LSTM Σ_t h_{t-1}ᵀ dG_t
= H_prevᵀ dG). The loops compute exactly the gradients of the cells' ``transition`` run
by ``scan_over_time`` (tested against autodiff and Keras), for the default activations
(σ gates, tanh candidate) and, for the GRU, the chapter's reset-before-product form.

It pays only for large kernels: the per-step accumulation it saves streams the whole
kernel through memory once the kernel outgrows the caches. Measured on a two-core CPU
(training step over 32 × 64 tokens, fused against autodiff): LSTM 768 450 / 507 ms,
LSTM 512 236 / 251 ms, GRU 768 411 / 449 ms, but LSTM 384 125 / 118 ms and LSTM 256
(batch 64) 132 / 118 ms. So cells fuse from ``MIN_KERNEL_ENTRIES`` (2^20, a 4 MiB kernel).

A cell's loop is four methods: ``forward`` (one step, and what its backward needs),
``transposed`` (the stored Wᵀ its backward multiplies by), ``backward`` (one step back)
and ``kernel_gradient`` (all steps at once);
``fused_sequence`` runs them with the padding mask and recurrent dropout.
"""

from __future__ import annotations

import tensorflow as tf

MIN_KERNEL_ENTRIES = 1 << 20


def worth_fusing(kernel) -> bool:
    """Whether a recurrent kernel is large enough for the written-out loop to be faster."""
    rows, columns = kernel.shape
    return rows * columns >= MIN_KERNEL_ENTRIES


def _unstacked(time_major):
    return tf.TensorArray(time_major.dtype, size=tf.shape(time_major)[0]).unstack(time_major)


class LSTMLoop:
    """Gates (i, f, c̃, o) as in ``LSTMCell``; states [h, c]."""

    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, x, states, h_in):
        _, c_prev = states
        gates = x + tf.matmul(h_in, self.kernel)
        i, f, g, o = tf.split(gates, 4, axis=-1)
        i, f, o, g = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o), tf.tanh(g)
        c = f * c_prev + i * g
        h = o * tf.tanh(c)
        return h, [h, c], [tf.concat([i, f, g, o], axis=-1), c_prev, h_in]

    def transposed(self):
        return tf.transpose(self.kernel)

    def backward(self, saved, d_states, kernel_t):
        """→ (dG, the gradient of h_{t-1} outside the product (none), of h_in, of c_{t-1})."""
        activations, c_prev, _ = saved
        dh, dc = d_states
        i, f, g, o = tf.split(activations, 4, axis=-1)
        tanh_c = tf.tanh(f * c_prev + i * g)
        dc = dc + dh * o * (1.0 - tf.square(tanh_c))
        d_gates = tf.concat(
            [
                dc * g * i * (1.0 - i),
                dc * c_prev * f * (1.0 - f),
                dc * i * (1.0 - tf.square(g)),
                dh * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        return d_gates, None, tf.matmul(d_gates, kernel_t), [dc * f]

    def kernel_gradient(self, saved, d_x):
        """Σ_t h_inᵀ dG_t: saved and d_x stacked [time, batch, ...]."""
        return _summed_product(saved[2], d_x)


class GRULoop:
    """Gates (z, r, h̃) as in ``GRUCell`` with the reset gate before the product; states [h]."""

    def __init__(self, kernel):
        self.units = kernel.shape[0]
        self.kernel_zr, self.kernel_h = tf.split(kernel, [2 * self.units, self.units], axis=-1)

    def forward(self, x, states, h_in):
        (h_prev,) = states
        x_zr, x_h = tf.split(x, [2 * self.units, self.units], axis=-1)
        zr = tf.sigmoid(x_zr + tf.matmul(h_in, self.kernel_zr))
        z, r = tf.split(zr, 2, axis=-1)
        candidate = tf.tanh(x_h + tf.matmul(r * h_in, self.kernel_h))
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h], [tf.concat([z, r, candidate], axis=-1), h_prev, h_in]

    def backward(self, saved, d_states, kernel_t):
        activations, h_prev, h_in = saved
        (dh,) = d_states
        z, r, candidate = tf.split(activations, 3, axis=-1)
        kernel_zr_t, kernel_h_t = kernel_t
        d_candidate = dh * (1.0 - z) * (1.0 - tf.square(candidate))
        d_reset_h = tf.matmul(d_candidate, kernel_h_t)  # the gradient of R ⊙ h_in
        d_zr = tf.concat(
            [dh * (h_prev - candidate) * z * (1.0 - z), d_reset_h * h_in * r * (1.0 - r)],
            axis=-1,
        )
        d_h_in = d_reset_h * r + tf.matmul(d_zr, kernel_zr_t)
        return tf.concat([d_zr, d_candidate], axis=-1), dh * z, d_h_in, []

    def transposed(self):
        return tf.transpose(self.kernel_zr), tf.transpose(self.kernel_h)

    def kernel_gradient(self, saved, d_x):
        activations, _, h_in = saved
        reset = activations[..., self.units : 2 * self.units]
        d_zr, d_candidate = d_x[..., : 2 * self.units], d_x[..., 2 * self.units :]
        return tf.concat(
            [_summed_product(h_in, d_zr), _summed_product(reset * h_in, d_candidate)], axis=-1
        )


def _summed_product(inputs, d_outputs):
    """Σ_t inputs_tᵀ d_outputs_t for [time, batch, m] and [time, batch, n] → [m, n]."""
    return tf.matmul(
        tf.reshape(inputs, [-1, tf.shape(inputs)[-1]]),
        tf.reshape(d_outputs, [-1, tf.shape(d_outputs)[-1]]),
        transpose_a=True,
    )


def fused_sequence(loop_class, projected, states, kernel, recurrent_mask=None, mask=None):
    """(x W_x + b [batch, time, gates * units], states, W_h) → (outputs [batch, time,
    units], final states), with the gradients written out by ``loop_class``.

    ``recurrent_mask`` [batch, units] multiplies h_{t-1} in the recurrent products; at a
    step where ``mask`` [batch, time] is False the states are kept and the output is 0.
    """
    keep_steps = None
    if mask is not None:
        keep_steps = tf.transpose(tf.cast(mask, projected.dtype))[:, :, None]  # (time, batch, 1)

    @tf.custom_gradient
    def run(projected, kernel, *initial):
        loop = loop_class(kernel)
        inputs = _unstacked(tf.transpose(projected, [1, 0, 2]))
        keeps = _unstacked(keep_steps) if keep_steps is not None else None
        num_steps = tf.shape(projected)[1]

        def arrays(count):
            return [tf.TensorArray(projected.dtype, size=num_steps) for _ in range(count)]

        def forward_step(t, step_states, outputs, saved):
            h_in = step_states[0] if recurrent_mask is None else step_states[0] * recurrent_mask
            output, new_states, to_save = loop.forward(inputs.read(t), step_states, h_in)
            if keeps is not None:  # a padded step keeps every state and outputs zeros
                keep = keeps.read(t)
                output = keep * output
                new_states = [
                    keep * new + (1.0 - keep) * old
                    for new, old in zip(new_states, step_states, strict=True)
                ]
            saved = [array.write(t, value) for array, value in zip(saved, to_save, strict=True)]
            return t + 1, new_states, outputs.write(t, output), saved

        _, final, outputs, saved = tf.while_loop(
            lambda t, *_: t < num_steps,
            forward_step,
            (tf.constant(0), list(initial), arrays(1)[0], arrays(3)),
        )
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
        saved = [array.stack() for array in saved]

        def gradient(d_sequence, *d_final):
            d_final = [
                tf.zeros_like(like) if upstream is None else upstream
                for upstream, like in zip(d_final, initial, strict=True)
            ]
            if d_sequence is None:
                d_sequence = tf.zeros_like(sequence)
            d_outputs = _unstacked(tf.transpose(d_sequence, [1, 0, 2]))
            saved_steps = [_unstacked(values) for values in saved]
            keeps_back = _unstacked(keep_steps) if keep_steps is not None else None
            kernel_t = loop.transposed()

            def backward_step(t, d_states, d_inputs):
                d_new = [d_states[0] + d_outputs.read(t), *d_states[1:]]
                if keeps_back is not None:  # a kept step passes its gradients to t - 1
                    keep = keeps_back.read(t)
                    d_kept = [(1.0 - keep) * d for d in d_states]
                    d_new = [keep * d for d in d_new]
                step_saved = [values.read(t) for values in saved_steps]
                d_x, d_h_direct, d_h_in, d_rest = loop.backward(step_saved, d_new, kernel_t)
                d_h = d_h_in if recurrent_mask is None else d_h_in * recurrent_mask
                if d_h_direct is not None:
                    d_h = d_h + d_h_direct
                d_prev = [d_h, *d_rest]
                if keeps_back is not None:
                    d_prev = [d + kept for d, kept in zip(d_prev, d_kept, strict=True)]
                return t - 1, d_prev, d_inputs.write(t, d_x)

            _, d_initial, d_inputs = tf.while_loop(
                lambda t, *_: t >= 0, backward_step, (num_steps - 1, d_final, arrays(1)[0])
            )
            d_inputs = d_inputs.stack()  # (time, batch, gates * units)
            d_kernel = loop.kernel_gradient(saved, d_inputs)
            return (tf.transpose(d_inputs, [1, 0, 2]), d_kernel, *d_initial)

        return (sequence, *final), gradient

    sequence, *final = run(projected, tf.convert_to_tensor(kernel), *states)
    sequence.set_shape(projected.shape[:2].concatenate([None]))
    return sequence, final
