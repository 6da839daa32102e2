"""The LSTM's training loop with its backward pass written out (TensorFlow-specific).

Autodiff of the time loop multiplies by Wᵀ with ``transpose_b`` at every step and, worse,
adds each step's [units, 4 * units] kernel gradient into an accumulator: two
weight-sized products and a weight-sized sum per step. Here the backward loop does one
product per step with a stored Wᵀ, and the kernel gradient is one product over all steps
at the end, Σ_t h_{t-1}ᵀ dG_t = H_prevᵀ dG. It computes exactly the gradients of
``LSTMCell.transition`` run by ``scan_over_time`` (tested against Keras' autodiff), for
the default activations (σ gates, tanh candidate and cell output).
"""

from __future__ import annotations

import tensorflow as tf


def fused_lstm_sequence(projected, h0, c0, kernel, recurrent_mask=None, mask=None):
    """(x W_x + b [batch, time, 4 * units], H_0, C_0, W_h) →
    (outputs [batch, time, units], H_T, C_T), with the gradients written out.

    ``recurrent_mask`` [batch, units] multiplies h_{t-1} in the recurrent product; at a
    step where ``mask`` [batch, time] is False the states are kept and the output is 0.
    """
    keep_steps = None
    if mask is not None:
        keep_steps = tf.transpose(tf.cast(mask, projected.dtype))[:, :, None]  # (time, batch, 1)

    @tf.custom_gradient
    def run(projected, h0, c0, kernel):
        gates_tm = tf.transpose(projected, [1, 0, 2])
        num_steps = tf.shape(gates_tm)[0]
        inputs = tf.TensorArray(projected.dtype, size=num_steps).unstack(gates_tm)
        keeps = (
            tf.TensorArray(projected.dtype, size=num_steps).unstack(keep_steps)
            if keep_steps is not None
            else None
        )

        def arrays():
            return tf.TensorArray(projected.dtype, size=num_steps)

        def forward_step(t, h, c, outputs, activations, c_prevs, h_ins):
            h_in = h if recurrent_mask is None else h * recurrent_mask
            gates = inputs.read(t) + tf.matmul(h_in, kernel)
            i, f, g, o = tf.split(gates, 4, axis=-1)
            i, f, o, g = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o), tf.tanh(g)
            c_new = f * c + i * g
            h_new = o * tf.tanh(c_new)
            output = h_new
            if keeps is not None:
                keep = keeps.read(t)
                output = keep * h_new
                h_new = output + (1.0 - keep) * h
                c_new = keep * c_new + (1.0 - keep) * c
            return (
                t + 1,
                h_new,
                c_new,
                outputs.write(t, output),
                activations.write(t, tf.concat([i, f, g, o], axis=-1)),
                c_prevs.write(t, c),
                h_ins.write(t, h_in),
            )

        _, h_last, c_last, outputs, activations, c_prevs, h_ins = tf.while_loop(
            lambda t, *_: t < num_steps,
            forward_step,
            (tf.constant(0), h0, c0, arrays(), arrays(), arrays(), arrays()),
        )
        sequence = tf.transpose(outputs.stack(), [1, 0, 2])
        activations, c_prevs, h_ins = activations.stack(), c_prevs.stack(), h_ins.stack()

        def gradient(d_sequence, d_h_last, d_c_last):
            d_sequence, d_h_last, d_c_last = (
                tf.zeros_like(like) if upstream is None else upstream
                for upstream, like in ((d_sequence, sequence), (d_h_last, h0), (d_c_last, c0))
            )
            d_outputs = tf.TensorArray(projected.dtype, size=num_steps).unstack(
                tf.transpose(d_sequence, [1, 0, 2])
            )
            acts = tf.TensorArray(projected.dtype, size=num_steps).unstack(activations)
            cs = tf.TensorArray(projected.dtype, size=num_steps).unstack(c_prevs)
            keeps_back = (
                tf.TensorArray(projected.dtype, size=num_steps).unstack(keep_steps)
                if keep_steps is not None
                else None
            )
            kernel_t = tf.transpose(kernel)

            def backward_step(t, dh, dc, d_gates):
                i, f, g, o = tf.split(acts.read(t), 4, axis=-1)
                c_prev = cs.read(t)
                c_new = f * c_prev + i * g
                tanh_c = tf.tanh(c_new)
                dh_new = dh + d_outputs.read(t)
                dc_new = dc
                if keeps_back is not None:  # a kept step passes dh and dc straight to t - 1
                    keep = keeps_back.read(t)
                    dh_new, dh_kept = keep * dh_new, (1.0 - keep) * dh
                    dc_new, dc_kept = keep * dc, (1.0 - keep) * dc
                dc_total = dc_new + dh_new * o * (1.0 - tf.square(tanh_c))
                d_gate = tf.concat(
                    [
                        dc_total * g * i * (1.0 - i),
                        dc_total * c_prev * f * (1.0 - f),
                        dc_total * i * (1.0 - tf.square(g)),
                        dh_new * tanh_c * o * (1.0 - o),
                    ],
                    axis=-1,
                )
                dh_prev = tf.matmul(d_gate, kernel_t)
                if recurrent_mask is not None:
                    dh_prev = dh_prev * recurrent_mask
                dc_prev = dc_total * f
                if keeps_back is not None:
                    dh_prev, dc_prev = dh_prev + dh_kept, dc_prev + dc_kept
                return t - 1, dh_prev, dc_prev, d_gates.write(t, d_gate)

            _, dh0, dc0, d_gates = tf.while_loop(
                lambda t, *_: t >= 0,
                backward_step,
                (num_steps - 1, d_h_last, d_c_last, arrays()),
            )
            d_gates = d_gates.stack()  # (time, batch, 4 * units)
            width = tf.shape(d_gates)[-1]
            d_kernel = tf.matmul(
                tf.reshape(h_ins, [-1, tf.shape(h_ins)[-1]]),
                tf.reshape(d_gates, [-1, width]),
                transpose_a=True,
            )
            return tf.transpose(d_gates, [1, 0, 2]), dh0, dc0, d_kernel

        return (sequence, h_last, c_last), gradient

    sequence, h_last, c_last = run(projected, h0, c0, tf.convert_to_tensor(kernel))
    sequence.set_shape(projected.shape[:2].concatenate([None]))
    return sequence, [h_last, c_last]
