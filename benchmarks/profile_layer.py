"""Where the time of a recurrent layer's training step goes: zoo's against PyTorch's
``nn.LSTM`` / ``nn.GRU``, op by op.

    python3 benchmarks/profile_layer.py [--layer lstm --batch 32 --steps 35 --features 64
        --units 256 --repeats 5]

The step is ``recurrent_layers.py``'s (forward and backward, no optimizer). Prints JSON
lines (``"profile"`` says which):

- ``graph``: the ops of zoo's traced step that run once per time step, counted in the
  bodies of its forward and backward ``tf.while_loop`` by op type (the graph as traced,
  before Grappler, and before the executor lowers each loop to Enter / Merge / Switch /
  NextIteration / Exit ops for every loop variable, which run per time step too). An
  LSTM trained with the native kernels (``zoo.layers.native``) has no loop in its graph:
  its whole pass is the two ops ``ZooLstm`` and ``ZooLstmGrad``; ``ZOO_NATIVE_KERNELS=0``
  profiles TensorFlow's loop instead;
- ``summary`` and ``op``: a trace of --repeats steps (``tf.profiler.experimental``,
  read back from its XSpace, ``xplane.pb``): kernel time per op type, by where the op
  runs (outside the loops, in the forward loop, in the backward loop). At the
  profiler's default level only the ops the executor counts as expensive are traced
  (matrix products, AddN, ...; TF 2.21 ignores ``host_tracer_level=3``), and tracing
  slows the step: the summary gives the traced and the untraced step time;
- PyTorch's step under ``torch.profiler``: the ATen ops it calls per step, nested ones
  included, and their self time.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np
from recurrent_layers import keras_gradients, torch_step
from timing import emit, time_calls

# The trace's event for the executor's handling of one op (not an op itself).
EXECUTOR_EVENT = "ExecutorState::Process"
REGIONS = ("outside the loops", "forward loop", "backward loop")
# Ops that only pass values along a loop body.
BOOKKEEPING = {"Identity", "IdentityN", "Const", "NoOp"}


def kind(op_type: str) -> str:
    """``math``; ``tensor_list`` (the lists that store each step's values for the
    backward loop, and the inputs and outputs per step); or ``bookkeeping``."""
    if op_type.startswith("TensorList"):
        return "tensor_list"
    return "bookkeeping" if op_type in BOOKKEEPING else "math"


def region(op_name: str) -> str:
    """Where an op of the trace runs: in the backward or the forward time loop, or not."""
    if "while_grad/body" in op_name:
        return "backward loop"
    if "while/body" in op_name:
        return "forward loop"
    return "outside the loops"


def loop_bodies(function) -> list[dict]:
    """Per ``While`` of a ``tf.function``'s graph: its name and its body's ops by type."""
    graph = function.get_concrete_function().graph.as_graph_def()
    functions = {entry.signature.name: entry for entry in graph.library.function}
    bodies = []
    for node in graph.node:
        if node.op in ("While", "StatelessWhile"):
            body = functions[node.attr["body"].func.name]
            bodies.append(
                {"loop": node.name, "ops": collections.Counter(n.op for n in body.node_def)}
            )
    return bodies


def traced_ops(logdir: Path):
    """(op name, op type, microseconds) of every op in the trace under ``logdir``, and
    the number of the executor's per-op events."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = logdir.glob("plugins/profile/*/*.xplane.pb")
    space = xplane_pb2.XSpace.FromString(path.read_bytes())
    ops, executor_events = [], 0
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name == EXECUTOR_EVENT:
                    executor_events += 1
                elif ":" in name and "::" not in name:  # "scope/op_name:OpType"
                    op_name, op_type = name.rsplit(":", 1)
                    if not op_type.strip().startswith("__inference"):  # the step itself
                        ops.append((op_name, op_type, event.duration_ps / 1e6))
    return ops, executor_events


def zoo_profile(args, inputs) -> list[dict]:
    import tensorflow as tf

    from zoo import layers

    layer = {"lstm": layers.LSTM, "gru": layers.GRU}[args.layer](args.units, return_sequences=True)
    gradients = keras_gradients(layer, inputs)
    rows = []
    for body in loop_bodies(gradients):
        kinds = collections.Counter(kind(op) for op in body["ops"].elements())
        rows.append(
            {
                "profile": "graph",
                "framework": "zoo",
                "loop": body["loop"],
                "ops_per_time_step": sum(body["ops"].values()),
                **{f"{name}_ops_per_time_step": count for name, count in kinds.items()},
                "ops": dict(body["ops"].most_common()),
            }
        )

    def step():
        return [gradient.numpy() for gradient in gradients()]

    untraced = time_calls(step, args.warmup, args.repeats)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        traced = time_calls(step, 0, args.repeats)
        tf.profiler.experimental.stop()
        ops, executor_events = traced_ops(Path(logdir))
    by_type = collections.defaultdict(lambda: [0, 0.0])
    for op_name, op_type, microseconds in ops:
        entry = by_type[(region(op_name), op_type)]
        entry[0] += 1
        entry[1] += microseconds
    summary = summary_row(args, "zoo", untraced, traced, len(ops), sum(op[2] for op in ops))
    summary["native_kernels"] = any(op_type.startswith("ZooLstm") for _, op_type, _ in ops)
    summary["executor_events_per_step"] = round(executor_events / args.repeats)
    for where in REGIONS:
        in_region = [op for op in ops if region(op[0]) == where]
        summary[f"traced_op_ms_per_step {where}"] = round(
            sum(op[2] for op in in_region) / args.repeats / 1000, 2
        )
    return [*rows, summary, *op_rows(args, "zoo", by_type)]


def torch_profile(args, inputs) -> list[dict]:
    import torch
    from torch.profiler import profile

    step = torch_step(args.layer, inputs, args.units)
    untraced = time_calls(step, args.warmup, args.repeats)
    with profile() as profiler:
        traced = time_calls(step, 0, args.repeats)
    by_type, total_ops, total_us = {}, 0, 0.0
    for event in profiler.key_averages():
        by_type[("ATen, nested included", event.key)] = [event.count, event.self_cpu_time_total]
        total_ops += event.count
        total_us += event.self_cpu_time_total
    row = summary_row(args, "torch", untraced, traced, total_ops, total_us)
    row["threads"] = torch.get_num_threads()
    return [row, *op_rows(args, "torch", by_type)]


def summary_row(args, framework, untraced, traced, num_ops, op_microseconds) -> dict:
    return {
        "profile": "summary",
        "framework": framework,
        "case": f"{args.layer} {args.batch}×{args.steps}×{args.features}→{args.units}",
        "ms_median_untraced": untraced["ms_median"],
        "ms_median_traced": traced["ms_median"],
        "traced_ops_per_step": round(num_ops / args.repeats),
        "traced_op_ms_per_step": round(op_microseconds / args.repeats / 1000, 2),
    }


def op_rows(args, framework, by_type, limit=15) -> list[dict]:
    """The op types that took the most time, one line each."""
    ranked = sorted(by_type.items(), key=lambda item: -item[1][1])[:limit]
    return [
        {
            "profile": "op",
            "framework": framework,
            "region": where,
            "op": op_type,
            "per_step": round(count / args.repeats, 1),
            "per_time_step": round(count / args.repeats / args.steps, 2),
            "us_per_step": round(microseconds / args.repeats),
        }
        for (where, op_type), (count, microseconds) in ranked
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=35)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--frameworks", nargs="+", choices=["zoo", "torch"], default=["zoo", "torch"]
    )
    args = parser.parse_args()
    inputs = (
        np.random.default_rng(0)
        .standard_normal((args.batch, args.steps, args.features))
        .astype("float32")
    )
    if "zoo" in args.frameworks:
        for row in zoo_profile(args, inputs):
            emit(row)
    if "torch" in args.frameworks:
        for row in torch_profile(args, inputs):
            emit(row)


if __name__ == "__main__":
    main()
