"""Training-step speed of zoo's recurrent layers against Keras' built-ins and, when it
is installed, PyTorch's nn.LSTM / nn.GRU (a baseline only, never a zoo dependency).

    python3 benchmarks/recurrent_layers.py [--batch 64 --steps 64 --features 28 --units 256]

Prints one JSON line per (framework, layer): milliseconds per forward+backward pass
(median, min, max and interquartile range of --repeats after --warmup) and tokens per
second (``timing.py`` says what every line holds).
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import emit, time_calls


def keras_gradients(layer, inputs):
    """The layer's training step as a ``tf.function``: the gradients of the sum of its
    outputs for its weights."""
    import tensorflow as tf

    layer(inputs)  # build

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(inputs, training=True))
        return tape.gradient(loss, layer.trainable_weights)

    return step


def keras_step(layer, inputs):
    """The step as a call that returns when the gradients are computed: a
    ``tf.function`` on the CPU returns computed tensors, so, like the PyTorch step
    (which leaves its gradients in ``.grad``), it does not copy them out."""
    step = keras_gradients(layer, inputs)
    return lambda: step()


def torch_step(kind, inputs, units):
    import torch

    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        inputs.shape[-1], units, batch_first=True
    )
    tensor = torch.from_numpy(inputs)

    def step():
        module.zero_grad()
        outputs, _ = module(tensor)
        outputs.sum().backward()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", help="Run only this framework:layer, e.g. zoo:lstm.")
    parser.add_argument("--torch-threads", type=int, help="default: PyTorch's own")
    args = parser.parse_args()

    import keras

    from zoo import layers

    inputs = (
        np.random.default_rng(0)
        .standard_normal((args.batch, args.steps, args.features))
        .astype("float32")
    )
    candidates = {
        ("zoo", "lstm"): lambda: keras_step(layers.LSTM(args.units, return_sequences=True), inputs),
        ("keras", "lstm"): lambda: keras_step(
            keras.layers.LSTM(args.units, return_sequences=True), inputs
        ),
        ("zoo", "gru"): lambda: keras_step(layers.GRU(args.units, return_sequences=True), inputs),
        ("keras", "gru"): lambda: keras_step(
            keras.layers.GRU(args.units, reset_after=False, return_sequences=True), inputs
        ),
    }
    try:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        candidates[("torch", "lstm")] = lambda: torch_step("lstm", inputs, args.units)
        candidates[("torch", "gru")] = lambda: torch_step("gru", inputs, args.units)
    except ImportError:
        pass
    for (framework, kind), make in candidates.items():
        if args.only and args.only != f"{framework}:{kind}":
            continue
        times = time_calls(make(), args.warmup, args.repeats)
        shape = f"{args.batch}×{args.steps}×{args.features}→{args.units}"
        emit(
            {
                "benchmark": "layer",
                "case": f"{kind} {shape}",
                "framework": framework,
                "layer": kind,
                **vars(args),
                **times,
                "tokens_per_sec": round(args.batch * args.steps / (times["ms_median"] / 1000)),
                **({"threads": torch.get_num_threads()} if framework == "torch" else {}),
            }
        )


if __name__ == "__main__":
    main()
