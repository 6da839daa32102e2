"""Every speed benchmark in one command, zoo against PyTorch, as one table.

    python3 benchmarks/run_all.py [--quick] [--out results.jsonl] [--torch-threads N]

Runs, each as a process of its own: ``recurrent_layers.py`` at the chapter's size
(32 × 35 × 64 → 256) and lm-lstm's (32 × 64 × 64 → 768), ``full_models.py`` (a
training step of each shipped recipe's model) and ``decoding.py`` (beam search and
generation with the shipped models). It collects their JSON lines (``--out`` writes
them to a file, one per line) and prints a Markdown table with a row per zoo (or Keras)
measurement beside the PyTorch measurement of the same case, and

    PyTorch / zoo = PyTorch's median time ÷ zoo's median time

so a ratio above 1 means zoo is faster; none where PyTorch has no counterpart. The
last column divides the fastest runs (min) instead: on a shared machine the medians
measure the load as much as the code, the fastest runs less so.
``--quick`` is a smoke run: fewer repeats, the chapter's layer size only, the
sampled-softmax translator only, 20 test sources.

The machine's load average is printed with the table: a load above its number of
cores means other processes shared the CPUs during the run, and the figures are not
quiet-machine figures (PyTorch's OpenMP threads, which wait for each other at every
operation, slow down far more than TensorFlow's on a shared CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (batch, steps, features, units): the chapter's LSTM; lm-lstm's.
LAYER_SIZES = [(32, 35, 64, 256), (32, 64, 64, 768)]


def benchmark_commands(quick: bool, torch_threads: int | None) -> list[list[str]]:
    """The benchmark processes to run, as argument lists after the interpreter."""
    repeats = ["--warmup", "1", "--repeats", "3"] if quick else []
    threads = ["--torch-threads", str(torch_threads)] if torch_threads else []
    commands = []
    for batch, steps, features, units in LAYER_SIZES[:1] if quick else LAYER_SIZES:
        sizes = ["--batch", batch, "--steps", steps, "--features", features, "--units", units]
        commands.append(["recurrent_layers.py", *map(str, sizes), *repeats, *threads])
    models = ["--models", "lm-lstm", "lm-gru", "seq2seq-attn"] if quick else []
    commands.append(["full_models.py", *models, *repeats, *threads])
    decoding = ["--sources", "20", "--beams", "4", "--tokens", "50", "--repeats", "2"]
    commands.append(["decoding.py", *(decoding if quick else []), *threads])
    return commands


def run(arguments: list[str]) -> tuple[list[dict], bool]:
    """One benchmark process → (its JSON lines, whether it succeeded); its stderr
    (TensorFlow's start-up logs) is shown only if it fails."""
    print(f"run_all: {' '.join(arguments)}", file=sys.stderr, flush=True)
    command = [sys.executable, str(HERE / arguments[0]), *arguments[1:]]
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if result.returncode:
        print(result.stderr[-4000:], file=sys.stderr)
        print(f"run_all: {arguments[0]} failed (exit {result.returncode})", file=sys.stderr)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return rows, result.returncode == 0


def label(row: dict) -> str:
    return row["framework"] + (f" ({row['backend']})" if row.get("backend") else "")


def rate(row: dict) -> str:
    for key, unit in (("tokens_per_sec", "tokens/s"), ("sentences_per_sec", "sentences/s")):
        if key in row:
            return f"{row[key]:,.0f} {unit}"
    return ""


def milliseconds(row: dict) -> str:
    return f"{row['ms_median']:,.2f} ({row['ms_min']:,.2f}–{row['ms_max']:,.2f})"


def memory(row: dict) -> str:
    return f"{row['peak_rss_mib']:,.0f}" if "peak_rss_mib" in row else ""


def table(rows: list[dict]) -> list[str]:
    """A Markdown table: each non-PyTorch row beside its case's PyTorch row."""
    lines = [
        "| benchmark | case | framework | ms median (min–max) | rate | peak RSS MiB "
        "| PyTorch ms median (min–max) | PyTorch peak RSS MiB | PyTorch / zoo "
        "| PyTorch / zoo, fastest runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    baselines = {
        (row["benchmark"], row["case"]): row for row in rows if row["framework"] == "torch"
    }
    for row in rows:
        if row["framework"] == "torch":
            continue
        baseline = baselines.get((row["benchmark"], row["case"]))
        ratios = ["null", "null"]
        if baseline:
            ratios = [f"{baseline[key] / row[key]:.2f}" for key in ("ms_median", "ms_min")]
        cells = [row["benchmark"], row["case"], label(row), milliseconds(row), rate(row)]
        cells += [memory(row), milliseconds(baseline) if baseline else "—"]
        cells += [memory(baseline) if baseline else "", *ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    parser.add_argument("--torch-threads", type=int, help="default: PyTorch's own")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows, failed = [], False
    for arguments in benchmark_commands(args.quick, args.torch_threads):
        found, succeeded = run(arguments)
        rows += found
        failed = failed or not succeeded
    load_after = os.getloadavg()[0]
    if args.out:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    print(
        f"PyTorch / zoo = PyTorch's median time ÷ zoo's: above 1, zoo is faster. "
        f"{os.cpu_count()} CPU cores; 1-minute load average {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end (above {os.cpu_count()}: the CPUs were shared, "
        "not quiet-machine figures).\n"
    )
    print("\n".join(table(rows)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
