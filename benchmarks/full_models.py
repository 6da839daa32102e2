"""One training step of each shipped recipe's whole model (embedding, recurrent layers,
output layer, loss, clipping, optimizer update, weight averaging), zoo against the same
model written in PyTorch (``torch_models.py``; a baseline installed by hand, never a zoo
dependency).

    python3 benchmarks/full_models.py [--models lm-lstm lm-gru seq2seq-attn seq2seq-attn-full]
        [--frameworks zoo torch] [--warmup 3 --repeats 10] [--translation-steps 12]

zoo's step is the one ``zoo run RECIPE`` takes: the recipe is loaded and resolved
(``zoo.recipe``), and ``zoo.training.trainer.fit`` builds the task's model, compiles it
with the recipe's optimizer, schedule, clipping and weight averaging, and runs
``Model.fit`` with the trainer's callbacks; only the training split is replaced by
one synthetic batch, repeated. The vocabularies are the recipe's data's, built by the
task as a run builds them. A step is the time from the end of one batch to the end of
the next (``Model.fit``'s own loop, the trainer's per-batch loss check included).

PyTorch trains the same sizes on the same batch (``torch_models.py`` says how, and each
line lists where the two models differ). ``seq2seq-attn`` trains its output layer with
a sampled softmax (1,024 words), and so does its PyTorch model; ``seq2seq-attn-full`` is
the same model with the full softmax in both (``--set model.sampled_softmax=0``).

Each (case, framework) runs in a process of its own, so ``peak_rss_mib`` is that
measurement's own peak resident memory (framework, model, optimizer and step; no
corpus is held); ``rss_before_steps_mib`` is the resident memory before the first step.
One JSON line per measurement (``timing.py``), ``tokens_per_sec`` counting the tokens
predicted (target words and <eos> of a translator).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from timing import current_rss_mib, emit, peak_rss_mib, summarize, time_calls

# case → (recipe, --set overrides)
CASES = {
    "lm-lstm": ("lm-lstm", ()),
    "lm-gru": ("lm-gru", ()),
    "seq2seq-attn": ("seq2seq-attn", ()),
    "seq2seq-attn-full": ("seq2seq-attn", ("model.sampled_softmax=0",)),
}
# Bucketed fra-eng training batches are cut to their longest pair: over one epoch of
# seq2seq-attn's data (590 batches of 256) the median batch is 12 source and 12 target
# tokens long (the mean 10.4).
TRANSLATION_STEPS = 12
# Ids of zoo's translation vocabularies: <pad>, <bos>, <eos>, <unk> come first.
PAD_ID, BOS_ID, FIRST_WORD_ID = 0, 1, 4


def describe(case: str, recipes: dict, folder: Path, translation_steps: int) -> dict:
    """What both frameworks build and time for ``case``, from its recipe and the
    recipe's data (prepared by the task, which writes the vocabularies into ``folder``;
    ``recipes`` keeps the data of each recipe already prepared)."""
    from zoo.recipe import load_recipe
    from zoo.tasks import get_task
    from zoo.training.run_directory import RunDirectory

    recipe_name, overrides = CASES[case]
    recipe = load_recipe(recipe_name, overrides)
    task = get_task(recipe["task"])
    vocab_folder = folder / recipe_name
    if recipe_name not in recipes:
        vocab_folder.mkdir(parents=True)
        recipes[recipe_name] = task.prepare(recipe, RunDirectory(vocab_folder), recipe["seed"])
    data = recipes[recipe_name]
    workload = {
        "case": case,
        "recipe": recipe_name,
        "overrides": list(overrides),
        "task": recipe["task"],
        "vocab_folder": str(vocab_folder),
        "model": recipe["model"],
        "train": recipe["train"],
        "batch": recipe["data"]["batch_size"],
        "steps_per_epoch": task.steps_per_epoch(data, recipe),
        "train_tokens": task.tokens_per_epoch(data),
    }
    if recipe["task"] == "language_model":
        return {
            **workload,
            "vocab_size": len(data.vocab),
            "num_steps": recipe["data"]["num_steps"],
            "carry_states": recipe["data"]["sampler"] == "sequential",
        }
    return {
        **workload,
        "src_vocab_size": len(data.src_vocab),
        "tgt_vocab_size": len(data.tgt_vocab),
        "num_steps": translation_steps,
        "train_examples": data.num_examples["train"],
    }


def synthetic_batch(workload: dict, seed: int = 0):
    """One batch of random token ids shaped as the recipe's: (tokens, targets) for a
    language model; ((source, source_valid_len, decoder_input), targets) for a translator,
    each sentence 0–3 tokens shorter than the batch (padding 0), as in a length bucket."""
    rng = np.random.default_rng(seed)
    batch, steps = workload["batch"], workload["num_steps"]
    if workload["task"] == "language_model":
        vocab = workload["vocab_size"]
        return tuple(rng.integers(0, vocab, (batch, steps), dtype=np.int32) for _ in range(2))
    positions = np.arange(steps)[None, :]
    sentences = []
    for vocab_size in (workload["src_vocab_size"], workload["tgt_vocab_size"]):
        lengths = rng.integers(steps - 3, steps + 1, batch).astype(np.int32)
        lengths[0] = steps  # the longest sentence sets the batch's length
        ids = rng.integers(FIRST_WORD_ID, vocab_size, (batch, steps), dtype=np.int32)
        sentences.append((np.where(positions < lengths[:, None], ids, PAD_ID), lengths))
    (source, source_valid_len), (targets, _) = sentences
    decoder_input = np.concatenate([np.full((batch, 1), BOS_ID, np.int32), targets[:, :-1]], 1)
    return (source, source_valid_len, decoder_input.astype(np.int32)), targets


def predicted_tokens(workload: dict, targets) -> int:
    if workload["task"] == "language_model":
        return targets.size
    return int(np.count_nonzero(targets != PAD_ID))


def zoo_times(workload: dict, warmup: int, repeats: int) -> tuple[dict, float]:
    """zoo's training step through ``trainer.fit`` → (times, RSS before the first step)."""
    import keras
    import tensorflow as tf

    from zoo.data import Vocab
    from zoo.recipe import load_recipe
    from zoo.tasks import get_task
    from zoo.training.run_directory import RunDirectory
    from zoo.training.trainer import fit

    class BatchEnds(keras.callbacks.Callback):
        """When each training batch ends; the memory before the first; one epoch only."""

        def __init__(self):
            super().__init__()
            self.ends, self.rss_before = [], None

        def on_train_begin(self, logs=None):
            self.rss_before = current_rss_mib()

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    class TimedTask:
        """The recipe's task, its training callbacks followed by ``BatchEnds``."""

        def __init__(self, task, timer):
            self.task, self.timer = task, timer

        def __getattr__(self, name):
            return getattr(self.task, name)

        def training_callbacks(self, model, recipe):
            own = getattr(self.task, "training_callbacks", lambda *_: [])(model, recipe)
            return [*own, self.timer]

    recipe = load_recipe(workload["recipe"], workload["overrides"])
    keras.utils.set_random_seed(recipe["seed"])
    batch = synthetic_batch(workload)
    folder = Path(workload["vocab_folder"])
    # What fit reads of the data: the real vocabularies and split sizes (the learning-rate
    # schedule depends on them), the one batch as the training split, no corpus in memory.
    data = SimpleNamespace(
        **{path.name[: -len(".txt")]: Vocab.load(path) for path in folder.glob("*vocab.txt")},
        train=tf.data.Dataset.from_tensors(batch).repeat(warmup + repeats),
        validation=None,
        steps_per_epoch=None,
        num_tokens={"train": workload["train_tokens"]},
        num_target_tokens={"train": workload["train_tokens"]},
        num_examples={"train": workload.get("train_examples", 0)},
    )
    timer = BatchEnds()
    with tempfile.TemporaryDirectory() as run_folder:
        run = RunDirectory(Path(run_folder))
        for subfolder in (run.checkpoints, run.logs):
            subfolder.mkdir()
        with contextlib.redirect_stdout(sys.stderr):  # Keras' epoch line; stdout is for JSON
            fit(TimedTask(get_task(recipe["task"]), timer), recipe, data, run, resume=False)
    milliseconds = np.diff(timer.ends[warmup - 1 :]) * 1000
    return summarize([float(value) for value in milliseconds]), timer.rss_before


def torch_times(workload: dict, warmup: int, repeats: int) -> tuple[dict, float]:
    """The PyTorch model's training step → (times, RSS before the first step)."""
    import torch
    import torch_models

    if workload.get("torch_threads"):
        torch.set_num_threads(workload["torch_threads"])
    torch.manual_seed(0)
    inputs, targets = synthetic_batch(workload)
    targets = torch.from_numpy(targets).long()
    spec = workload["model"]
    if workload["task"] == "language_model":
        model = torch_models.LanguageModel(
            workload["vocab_size"], spec["layers"], spec["embedding_dim"], spec["dropout"]
        )
        tokens = torch.from_numpy(inputs).long()
        carried = None

        def loss():
            nonlocal carried
            logits, states = model(tokens, carried)
            if workload["carry_states"]:
                carried = torch_models.detached(states)
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())

    else:
        model = torch_models.Translator(
            workload["src_vocab_size"], workload["tgt_vocab_size"], spec
        )
        source, lengths, decoder_input = (torch.from_numpy(array).long() for array in inputs)

        def loss():
            hidden = model(source, lengths, decoder_input)
            if spec["sampled_softmax"]:
                return torch_models.sampled_softmax_loss(
                    hidden, targets, *model.output_weights(), spec["sampled_softmax"]
                )
            return torch_models.full_softmax_loss(hidden, targets, *model.output_weights())

    step = torch_models.training_step(model, loss, workload["train"], workload["steps_per_epoch"])
    rss_before = current_rss_mib()
    return time_calls(step, warmup, repeats), rss_before


def measure(workload: dict, framework: str, warmup: int, repeats: int) -> dict:
    """One (case, framework) measurement, in this process: its JSON line."""
    timed = zoo_times if framework == "zoo" else torch_times
    times, rss_before = timed(workload, warmup, repeats)
    tokens = predicted_tokens(workload, synthetic_batch(workload)[1])
    spec = workload["model"]
    row = {
        "benchmark": "full_model",
        "case": workload["case"],
        "framework": framework,
        "recipe": workload["recipe"],
        "overrides": workload["overrides"],
        "batch": workload["batch"],
        "num_steps": workload["num_steps"],
        "vocab": [
            workload[key]
            for key in ("vocab_size", "src_vocab_size", "tgt_vocab_size")
            if key in workload
        ],
        **times,
        "tokens_per_step": tokens,
        "tokens_per_sec": round(tokens / (times["ms_median"] / 1000)),
        "rss_before_steps_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }
    if workload["task"] == "translator":
        softmax = spec["sampled_softmax"]
        row["softmax"] = f"sampled {softmax}" if softmax else "full"
        row["pairs_per_sec"] = round(workload["batch"] / (times["ms_median"] / 1000), 1)
    if framework == "torch":
        import torch
        import torch_models

        row["threads"] = torch.get_num_threads()
        row["differences"] = torch_models.differences(workload)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument(
        "--frameworks", nargs="+", choices=["zoo", "torch"], default=["zoo", "torch"]
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (at least 1)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--translation-steps", type=int, default=TRANSLATION_STEPS)
    parser.add_argument("--torch-threads", type=int, help="default: PyTorch's own")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child process's workload
    args = parser.parse_args()
    if args.measure:
        request = json.loads(args.measure)
        emit(measure(request["workload"], request["framework"], args.warmup, args.repeats))
        return
    frameworks = list(args.frameworks)
    if "torch" in frameworks and importlib.util.find_spec("torch") is None:
        print("full_models: PyTorch is not installed; timing zoo alone", file=sys.stderr)
        frameworks.remove("torch")
    recipes, failed = {}, False
    with tempfile.TemporaryDirectory() as folder:
        for case in args.models:
            workload = describe(case, recipes, Path(folder), args.translation_steps)
            workload["torch_threads"] = args.torch_threads
            for framework in frameworks:
                request = json.dumps({"workload": workload, "framework": framework})
                command = [sys.executable, __file__, "--measure", request]
                command += ["--warmup", str(max(1, args.warmup)), "--repeats", str(args.repeats)]
                result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
                sys.stdout.write(result.stdout)
                sys.stdout.flush()
                if result.returncode:
                    print(f"full_models: {case} on {framework} failed", file=sys.stderr)
                    failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
