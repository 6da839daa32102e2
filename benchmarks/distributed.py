"""Two workers against one: training throughput of a recipe run as one process and as
``--workers 2`` on 127.0.0.1, and the time of the gradient all-reduce per step.

    python3 benchmarks/distributed.py [--recipe lm-gru] [--epochs 1] [--steps 30]

Each measurement is one JSON line (``benchmark: distributed``):

- ``case: training``: tokens per second of the recipe's training epochs (``metrics.json``'s
  ``tokens_per_sec``; the whole job's tokens over its training time), for 1 and 2
  workers, and their ratio.
- ``case: allreduce``: milliseconds per all-reduce of a gradient the size of the recipe's
  model (every trainable variable, float32), summed across 2 worker processes, as
  ``MultiWorkerMirroredStrategy`` does once per step: the communication a second worker
  adds to each step.

On one two-core machine, two workers share the same two cores that one process already
uses, so two workers cannot be faster: each step of each worker does half the work on
half the cores, and adds the all-reduce. The benchmark measures how much slower, and how
much of that is communication.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import emit, summarize  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_recipe(recipe: str, overrides: list[str], out: Path, workers: int) -> dict:
    command = [sys.executable, "-m", "zoo.cli.main", "run", "recipe", recipe, "--out", str(out)]
    for assignment in overrides:
        command += ["--set", assignment]
    if workers > 1:
        command += ["--workers", str(workers)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def allreduce_worker(index: int, addresses: list[str], recipe: str, steps: int) -> None:
    """One of the two all-reduce processes: the recipe's model's variables, summed
    across the workers ``steps`` times; worker 0 prints the timing."""
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )
    from zoo.recipe import load_recipe
    from zoo.training.distribute import distribution

    spec = load_recipe(recipe)
    dist = distribution({**spec["train"], "distribute": "multi_worker", "connect_timeout": 120})
    import tensorflow as tf

    from zoo.tasks import get_task

    task = get_task(spec["task"])
    with tempfile.TemporaryDirectory() as folder:

        class Run:  # what prepare needs of a run directory
            path = Path(folder)

        data = task.prepare(spec, Run(), spec["seed"])
        with dist.scope():
            model = task.build_model(spec, data)
    shapes = [variable.shape for variable in model.trainable_variables]
    values = [tf.ones(shape) for shape in shapes]
    strategy = dist.strategy

    @tf.function
    def reduce():
        def step():
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.SUM, values)

        return strategy.run(step)

    for _ in range(3):
        reduce()
    milliseconds = []
    for _ in range(steps):
        start = time.perf_counter()
        result = reduce()
        float(tf.reduce_sum(result[0]))  # wait for it
        milliseconds.append((time.perf_counter() - start) * 1000)
    if index == 0:
        parameters = sum(int(tf.size(value)) for value in values)
        emit(
            {
                "benchmark": "distributed",
                "case": "allreduce",
                "recipe": recipe,
                "workers": 2,
                "parameters": parameters,
                "megabytes": round(parameters * 4 / 2**20, 2),
                **summarize(milliseconds),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="lm-gru")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="all-reduces timed")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--allreduce-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_worker is not None:
        allreduce_worker(args.allreduce_worker, args.addresses.split(","), args.recipe, args.steps)
        return
    from zoo.training.launch import free_ports

    overrides = [f"train.epochs={args.epochs}", "export.formats=[]"]
    if args.recipe.startswith("lm-"):
        overrides += ["pretrain.source=null", "evaluate.splits=[test]"]
    else:
        overrides += ["evaluate.max_sentences=100"]
    overrides += args.overrides
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 2):
            metrics = run_recipe(args.recipe, overrides, Path(folder) / f"w{workers}", workers)
            rates[workers] = metrics["tokens_per_sec"]
            emit(
                {
                    "benchmark": "distributed",
                    "case": "training",
                    "recipe": args.recipe,
                    "workers": workers,
                    "epochs": args.epochs,
                    "tokens_per_sec": metrics["tokens_per_sec"],
                    "train_seconds": metrics["train_seconds"],
                }
            )
    emit(
        {
            "benchmark": "distributed",
            "case": "training",
            "recipe": args.recipe,
            "two_over_one": round(rates[2] / rates[1], 3),
        }
    )
    addresses = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    command = [sys.executable, __file__, "--recipe", args.recipe, "--steps", str(args.steps)]
    command += ["--addresses", addresses]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        subprocess.Popen(
            [*command, "--allreduce-worker", str(index)],
            env=environment,
            stdout=None if index == 0 else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index in (0, 1)
    ]
    for worker in workers:
        worker.wait(timeout=600)


if __name__ == "__main__":
    main()
