"""Callbacks of the fit loop: checkpoints that survive ``kill -9``, a guard against a
non-finite loss, and training throughput."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import keras

from zoo.reports.progress import ProgressBar, on_terminal
from zoo.training.keras_internals import weight_average_pairs
from zoo.training.run_directory import RunError, write_atomically


class EpochCheckpoint(keras.callbacks.Callback):
    """After each finished epoch with a finite loss: ``last.keras`` (model and optimizer),
    ``best.keras`` when the validation loss is the lowest so far, and ``state.json``
    (epochs done, best epoch, history); each is written to a temporary file then
    renamed, so an interrupted run always finds whole checkpoints.

    With ``patience``, training stops once the validation loss has not improved for
    that many epochs (early stopping). Without ``write`` (a distributed run's workers
    other than the chief) nothing is written, and the state is kept in memory alike.
    """

    def __init__(
        self, directory: Path, state: dict, guard: NonFiniteLossGuard, patience=None, write=True
    ):
        super().__init__()
        self.directory = Path(directory)
        self.state = state
        self.guard = guard
        self.patience = patience
        self.write = write

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.tripped:
            return
        logs = logs or {}
        history = self.state.setdefault("history", {})
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        self._save("last.keras")
        val_loss = logs.get("val_loss")
        best = self.state.get("best_val_loss")
        if val_loss is not None and (best is None or val_loss < best):
            with averaged_weights(self.model):  # what validation measured
                self._save("best.keras")
            self.state.update(best_val_loss=float(val_loss), best_epoch=epoch + 1)
        self.state["epochs_done"] = epoch + 1
        if self.write:
            write_atomically(self.directory / "state.json", json.dumps(self.state, indent=2))
        best_epoch = self.state.get("best_epoch")
        if self.patience and best_epoch and epoch + 1 - best_epoch >= self.patience:
            self.model.stop_training = True

    def _save(self, name):
        if not self.write:
            return
        temporary = self.directory / f"{Path(name).stem}.tmp.keras"
        self.model.save(temporary)
        os.replace(temporary, self.directory / name)


def _swap_averaged_weights(model) -> None:
    for weight, average in weight_average_pairs(model.optimizer):
        held = keras.ops.copy(weight.value)
        weight.assign(average)
        average.assign(held)


@contextlib.contextmanager
def averaged_weights(model):
    """Within the block the model holds the optimizer's moving average of its weights
    (``train.weight_averaging``), and the optimizer the raw ones; a model without
    averaging is left as it is."""
    swap = getattr(getattr(model, "optimizer", None), "use_ema", False)
    if swap:
        _swap_averaged_weights(model)
    try:
        yield model
    finally:
        if swap:
            _swap_averaged_weights(model)


class ValidateAveragedWeights(keras.callbacks.Callback):
    """Validation during training measures the averaged weights, which are what the
    run keeps; training goes on from the raw ones."""

    def on_test_begin(self, logs=None):
        _swap_averaged_weights(self.model)

    def on_test_end(self, logs=None):
        _swap_averaged_weights(self.model)


def read_checkpoint_state(directory: Path) -> dict | None:
    path = Path(directory) / "state.json"
    if not path.is_file() or not (Path(directory) / "last.keras").is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: damaged checkpoint state, not JSON ({error})") from None
    if not isinstance(state, dict) or not isinstance(state.get("epochs_done"), int):
        raise RunError(f"{path}: damaged checkpoint state (no epochs_done count)")
    return state


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.tripped = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.tripped = (self.epoch, batch, float(loss))
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


class Throughput(keras.callbacks.Callback):
    """Training tokens per second, timing only the training part of each epoch.

    With a ``state`` (the run's checkpoint state) the totals accumulate there, in
    ``train_seconds`` and ``timed_epochs``, so a resumed run reports the training time
    of all its finished epochs, not only of those since the resume. An epoch cut short
    by an interruption is not counted.
    """

    def __init__(self, tokens_per_epoch: int, state: dict | None = None):
        super().__init__()
        self.tokens_per_epoch = tokens_per_epoch
        self.state = {} if state is None else state
        self.state.setdefault("train_seconds", 0.0)
        self.state.setdefault("timed_epochs", 0)
        self._epoch_seconds = 0.0
        self._start = None

    @property
    def seconds(self) -> float:
        return self.state["train_seconds"]

    @property
    def epochs(self) -> int:
        return self.state["timed_epochs"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_seconds = 0.0
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()
        self.state["train_seconds"] += self._epoch_seconds
        self.state["timed_epochs"] += 1

    def _stop(self):
        if self._start is not None:
            self._epoch_seconds += time.perf_counter() - self._start
            self._start = None

    @property
    def tokens_per_sec(self) -> float:
        return self.tokens_per_epoch * self.epochs / self.seconds if self.seconds else 0.0


class PlateauDecay(keras.callbacks.Callback):
    """``train.lr_schedule: plateau``: divides the learning rate by ``factor`` (not below
    ``minimum``) whenever the validation loss has not improved for ``patience`` epochs,
    then counts again from zero (a step decay, as Zaremba et al. 2014 and PyTorch's
    word_language_model example train word-level LSTMs with SGD).

    Its record (the current rate, the best validation loss, the epochs since) lives in
    ``state["plateau"]``, the run's checkpoint state, which ``EpochCheckpoint`` writes to
    state.json after this callback's ``on_epoch_end``: a resumed run starts from the
    decayed rate, not the recipe's. Place it before ``EpochCheckpoint``.
    """

    def __init__(self, state: dict, factor: float, patience: int, minimum: float = 0.0):
        super().__init__()
        self.state = state
        self.factor = factor
        self.patience = patience
        self.minimum = minimum

    def on_train_begin(self, logs=None):
        record = self.state.get("plateau")
        if record is None:
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            record = {"learning_rate": rate, "best_val_loss": None, "stalled_epochs": 0}
            self.state["plateau"] = record
        self.model.optimizer.learning_rate = record["learning_rate"]

    def on_epoch_end(self, epoch, logs=None):
        val_loss = (logs or {}).get("val_loss")
        record = self.state["plateau"]
        if val_loss is None or not math.isfinite(float(val_loss)):
            return
        if record["best_val_loss"] is None or val_loss < record["best_val_loss"]:
            record.update(best_val_loss=float(val_loss), stalled_epochs=0)
            return
        record["stalled_epochs"] += 1
        if record["stalled_epochs"] >= self.patience:
            lowered = max(record["learning_rate"] / self.factor, self.minimum)
            record.update(learning_rate=lowered, stalled_epochs=0)
            self.model.optimizer.learning_rate = lowered


class ResetCarriedStates(keras.callbacks.Callback):
    """Zeroes a language model's carried training state at the start of each epoch,
    where the sequential sampler starts its rows again from a new offset."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_carried_states()


class StageEstimate(keras.callbacks.Callback):
    """One line on stderr, early in a stage, saying how long it is expected to take: the
    time of ``timed`` batches after the first ``warmup`` ones (which build and compile),
    times the training batches left (validation at each epoch's end adds a little)."""

    def __init__(self, label: str, batches_left: int, warmup: int = 3, timed: int = 10):
        super().__init__()
        self.label, self.batches_left = label, batches_left
        self.warmup, self.timed = warmup, timed
        self.seen, self.start, self.done = 0, None, False

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        self.seen += 1
        if self.seen == self.warmup:
            self.start = time.perf_counter()
        elif self.seen == self.warmup + self.timed:
            per_batch = (time.perf_counter() - self.start) / self.timed
            minutes = per_batch * max(0, self.batches_left - self.seen) / 60
            below_bar = "\n" if on_terminal() else ""  # EpochProgress' bar keeps its line
            print(
                f"{below_bar}zoo: {self.label} expected to take about {minutes:.0f} min more "
                f"({per_batch:.2f} s a batch on this machine, {self.batches_left:,} batches)",
                file=sys.stderr,
            )
            self.done = True


class StepLog(keras.callbacks.Callback):
    """``logs/steps.csv``: epoch, step and the training loss as the progress bar shows it
    (the epoch's running mean) after every step; what tells two runs apart step by step
    (one process against several workers), where ``history.csv`` has epochs only."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if not self.path.is_file():
            self.path.write_text("epoch,step,loss\n", encoding="utf-8")

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(f"{self.epoch},{batch},{float(logs['loss']):.9g}\n")


class EpochProgress(keras.callbacks.Callback):
    """What training shows on stderr: on a terminal a progress bar through each epoch
    (batches, rate, time left for the whole training, the running loss), then the
    epoch's line; elsewhere the epoch's line alone, ``epoch 2/5: loss 1.92, perplexity
    6.8, val_loss 1.95, val_perplexity 7.0 (12.3 s)``. stdout is left to results.

    Args:
        epochs: the epochs of the whole training (a resumed run's included).
        steps_per_epoch: batches an epoch, about (a sampler's count is known only after
            the first epoch).
    """

    def __init__(self, epochs: int, steps_per_epoch: int):
        super().__init__()
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.bar = None
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        if on_terminal():
            later = (self.epochs - epoch - 1) * self.steps_per_epoch
            label = f"epoch {epoch + 1}/{self.epochs}"
            self.bar = ProgressBar(label, self.steps_per_epoch, "batches", after=later)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            loss = (logs or {}).get("loss")
            self.bar.update(batch + 1, "" if loss is None else f"loss {float(loss):.4g}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = ", ".join(f"{key} {float(value):.4g}" for key, value in logs.items())
        seconds = time.perf_counter() - self.started
        line = f"epoch {epoch + 1}/{self.epochs}: {values} ({seconds:.1f} s)"
        if not math.isfinite(float(logs.get("loss", 0.0))):
            line = ""  # NonFiniteLossGuard stopped it: the error's one line says so
        if self.bar is not None:
            self.bar.close(line)
            self.bar = None
        elif line:
            print(line, file=sys.stderr, flush=True)
