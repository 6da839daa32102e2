"""Inference speed of an export against the Keras model it came from.

    python3 benchmarks/export_speed.py --lm RUN_DIR [--translator RUN_DIR] [--tokens 400]

Needs runs exported with ``zoo export`` (their ``export/`` folder). Run it on a quiet
machine (no training beside it). Prints one JSON line per measurement:

- ``generate``: tokens per second of greedy generation from "time traveller" at batch 1,
  through the same decoding loop (``zoo.decoding.generate_tokens``), with the Keras
  model's ``step`` in a ``tf.function`` and with each TFLite file of the export
  (LiteRT ``Interpreter``), and the ratio to Keras;
- ``translate_process``: wall seconds of a whole ``zoo translate DIR "i'm home ."``
  process (start-up included, the median of --repeats), from the export folder
  (LiteRT, no TensorFlow imported) and from the run (Keras).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from decoding import generation_times


def tokens_per_second(backend, prefix_ids, num_tokens) -> float:
    return 1000 / generation_times(backend, prefix_ids, num_tokens, repeats=1)["ms_median"]


def generation(run: Path, num_tokens: int) -> list[dict]:
    from zoo.decoding.keras_backend import KerasLanguageModel
    from zoo.export.litert import LiteRTLanguageModel, LiteRTModel
    from zoo.export.manifest import read_manifest
    from zoo.text import Vocab, clean_time_machine, tokenize
    from zoo.training.run_directory import RunDirectory

    export = run / "export"
    manifest = read_manifest(export)
    vocab = Vocab.load(export / "vocab.txt")
    prefix_ids = vocab[tokenize(clean_time_machine("time traveller"), level="char")]
    directory = RunDirectory(run)
    keras_rate = tokens_per_second(
        KerasLanguageModel(directory.load_model(directory.model_path)), prefix_ids, num_tokens
    )
    rows = [{"benchmark": "generate", "backend": "keras", "tokens_per_sec": round(keras_rate, 1)}]
    for entry in manifest["tflite"]:
        backend = LiteRTLanguageModel(LiteRTModel(export / entry["file"]), manifest)
        rate = tokens_per_second(backend, prefix_ids, num_tokens)
        rows.append(
            {
                "benchmark": "generate",
                "backend": f"tflite/{entry['quantization']}",
                "tokens_per_sec": round(rate, 1),
                "times_keras": round(rate / keras_rate, 2),
            }
        )
    return rows


def translate_process(folder: Path, repeats: int) -> float:
    command = [sys.executable, "-m", "zoo.cli.main", "translate", str(folder), "i'm home ."]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", type=Path, help="an exported language-model run")
    parser.add_argument("--translator", type=Path, help="an exported translator run")
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = generation(args.lm, args.tokens) if args.lm else []
    if args.translator:
        for name, folder in (("export", args.translator / "export"), ("run", args.translator)):
            seconds = translate_process(folder, args.repeats)
            rows.append(
                {"benchmark": "translate_process", "from": name, "seconds": round(seconds, 3)}
            )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
