"""Training-step time of the default translator (seq2seq-attn's model) with the full
softmax over the French vocabulary and with a sampled one.

    python3 benchmarks/translator_step.py [--batch 128 --steps 10 --sampled 0 1024] [--deep-output]

One JSON line per setting: milliseconds per optimizer step through ``Model.fit`` (the
median of --repeats steps after --warmup), on random token ids shaped like a bucketed
fra-eng batch. The vocabulary sizes default to fra-eng's at min_freq 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def step_milliseconds(args, sampled: int) -> float:
    import keras
    import tensorflow as tf

    from zoo.models import Translator

    keras.utils.set_random_seed(0)
    units = args.units
    model = Translator(
        args.src_vocab,
        args.tgt_vocab,
        embedding_dim=units,
        encoder={"name": "deep_rnn", "layer": "gru", "units": units, "num_layers": 2},
        decoder={
            "cell": "gru_cell",
            "units": units,
            "num_layers": 2,
            "dropout": 0.1,
            "deep_output": args.deep_output,
        },
        attention={"name": "additive_attention", "units": units},
        sampled_softmax=sampled,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    rng = np.random.default_rng(0)
    shape = (args.batch, args.steps)
    source = rng.integers(4, args.src_vocab, shape).astype("int32")
    lengths = np.full(args.batch, args.steps, "int32")
    decoder_input = rng.integers(4, args.tgt_vocab, shape).astype("int32")
    targets = rng.integers(4, args.tgt_vocab, shape).astype("int32")
    batch = tf.data.Dataset.from_tensors(((source, lengths, decoder_input), targets))

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append((time.perf_counter() - self.start) * 1000)

    timer = Timer()
    model.fit(batch.repeat(args.warmup + args.repeats), callbacks=[timer], verbose=0, shuffle=False)
    return statistics.median(timer.times[args.warmup :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="source and target length")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--src-vocab", type=int, default=9593)
    parser.add_argument("--tgt-vocab", type=int, default=16950)
    parser.add_argument("--sampled", type=int, nargs="+", default=[0, 1024])
    parser.add_argument("--deep-output", action="store_true", help="the decoder's deep output")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    for sampled in args.sampled:
        ms = step_milliseconds(args, sampled)
        print(
            json.dumps(
                {
                    "model": "seq2seq-attn",
                    "softmax": f"sampled {sampled}" if sampled else "full",
                    "batch": args.batch,
                    "steps": args.steps,
                    "deep_output": args.deep_output,
                    "ms_per_step": round(ms, 1),
                    "pairs_per_sec": round(args.batch / ms * 1000, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
