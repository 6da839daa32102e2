"""Callbacks of the fit loop: checkpoints that survive ``kill -9``, a guard against a
non-finite loss, and training throughput."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

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
        self.state["random_states"] = random_states(self.model)
        if self.write:
            write_atomically(self.directory / "state.json", json.dumps(self.state, indent=2))
            remove_partial(self.directory)  # the epoch it was part of is checkpointed whole
        best_epoch = self.state.get("best_epoch")
        if self.patience and best_epoch and epoch + 1 - best_epoch >= self.patience:
            self.model.stop_training = True

    def _save(self, name):
        if not self.write:
            return
        temporary = self.directory / f"{Path(name).stem}.tmp.keras"
        self.model.save(temporary)
        os.replace(temporary, self.directory / name)


def _seed_generator_states(model) -> list:
    return [
        variable
        for variable in model.non_trainable_variables
        if variable.path.endswith("seed_generator_state")
    ]


def random_states(model) -> list:
    """The states of the model's random-number generators (``keras.random.SeedGenerator``:
    the seed and the count of draws of each dropout, variables named
    ``seed_generator_state``), in the model's layer order. Keras' ``model.save`` leaves
    them out (keras#19796, closed without a change), so a model loaded from a checkpoint
    drew its first epoch's masks again, from the recipe's seed; checkpoints keep them
    beside the model."""
    return [
        keras.ops.convert_to_numpy(variable).tolist() for variable in _seed_generator_states(model)
    ]


# A checkpoint of an earlier zoo has no generator states: its generators go on from a
# count no epoch reaches (an epoch draws a mask or two a batch), so that a resumed
# epoch's masks are new ones, not the first epoch's again.
DRAWS_PER_EPOCH_BOUND = 1 << 20


def restore_random_states(model, states, epochs_done: int = 0) -> None:
    """Sets the model's generators to ``states`` (``random_states`` of a checkpoint). A
    checkpoint without them (written by an earlier zoo) moves each generator's count
    past ``epochs_done`` epochs of draws instead."""
    variables = _seed_generator_states(model)
    if isinstance(states, list) and len(states) == len(variables):
        for variable, state in zip(variables, states, strict=True):
            if np.shape(state) == tuple(variable.shape):
                variable.assign(np.asarray(state, dtype=variable.dtype))
        return
    for variable in variables:
        seed, count = keras.ops.convert_to_numpy(variable).tolist()
        moved = (count + epochs_done * DRAWS_PER_EPOCH_BOUND) % (1 << 32)
        variable.assign(np.asarray([seed, moved], dtype=variable.dtype))


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


# checkpoints/partial/: the model, optimizer and progress of an epoch in progress
PARTIAL = "partial"
_PARTIAL_NEW, _PARTIAL_OLD = "partial.new", "partial.old"


class BatchCheckpoint(keras.callbacks.Callback):
    """Every ``minutes`` of training within an epoch, ``checkpoints/partial/``: the model
    with its optimizer (``model.keras``) and how far the epoch got (``state.json``: the
    epoch, the batches trained, the running metrics' variables, its training seconds),
    so that an interrupted run resumes at that batch and loses at most ``minutes`` of
    training, not its epoch. It is written into ``partial.new/`` and renamed in (the
    previous one kept as ``partial.old/`` for the moment between two renames), so a
    kill never leaves half of one; ``EpochCheckpoint`` removes it once the epoch is
    checkpointed whole.

    ``resumed``: the partial state this fit starts from (``read_partial``), whose epoch
    then goes on from its batch with its metrics' running values.
    """

    def __init__(self, directory: Path, minutes: float, throughput, resumed=None):
        super().__init__()
        self.directory = Path(directory)
        self.seconds = minutes * 60 if minutes > 0 else math.inf  # 0: resumes only
        self.throughput = throughput
        self.resumed = resumed
        self.epoch, self.offset, self.last = 0, 0, 0.0
        self.pending = self.carried = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.offset, self.pending = epoch, 0, None
        if self.resumed is not None and self.resumed["epoch"] == epoch:
            self.offset = self.resumed["batches"]
            self.pending = self.resumed["metrics"]
            self.carried = self.resumed.get("carried")
            self.throughput.carry(self.resumed["seconds"])
            self.resumed = None
        self.last = time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        if self.carried is not None:
            # after ResetCarriedStates' epoch start: the state the batch continues from
            self.model.restore_carried_states(self.carried)
            self.carried = None

    def _add_the_saved_metrics(self, logs) -> None:
        """The epoch's running metrics go on from their part before the interruption.
        Their variables are sums (totals, counts), zeroed by Keras at the epoch's start:
        the saved sums are added, and the logs the callbacks after this one see are the
        running values again."""
        for variable in self.model.metrics_variables:
            if variable.path in self.pending:
                variable.assign(variable + self.pending[variable.path])
        if logs is not None:  # as Keras gives them: numbers, not tensors
            for key, value in self.model.get_metrics_result().items():
                value = keras.ops.convert_to_numpy(value)
                logs[key] = float(value) if np.ndim(value) == 0 else value
        self.pending = None

    def on_train_batch_end(self, batch, logs=None):
        if self.pending is not None:  # the first batch after the resume
            self._add_the_saved_metrics(logs)
        if time.monotonic() - self.last >= self.seconds:
            self.save(self.offset + batch + 1)
            self.last = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.pending is None:
            return
        # Checkpointed after its last batch, the epoch had none left. Validation has
        # used the metrics since: its values are held while the saved sums give the
        # epoch's training figures.
        variables = self.model.metrics_variables
        held = [keras.ops.convert_to_numpy(variable) for variable in variables]
        for variable, value in zip(variables, held, strict=True):
            variable.assign(np.zeros_like(value))
        self._add_the_saved_metrics(logs)
        for variable, value in zip(variables, held, strict=True):
            variable.assign(value)

    def save(self, batches: int) -> None:
        new = self.directory / _PARTIAL_NEW
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        self.model.save(new / "model.keras")
        state = {
            "epoch": self.epoch,
            "batches": batches,
            "metrics": {
                variable.path: keras.ops.convert_to_numpy(variable).tolist()
                for variable in self.model.metrics_variables
            },
            "seconds": self.throughput.epoch_seconds(),
            "random_states": random_states(self.model),
        }
        carried = getattr(self.model, "carried_states", lambda: None)()
        if carried is not None:  # the sequential sampler's rows go on from these states
            np.savez(new / "carried.npz", *carried)
        (new / "state.json").write_text(json.dumps(state), encoding="utf-8")
        current, old = self.directory / PARTIAL, self.directory / _PARTIAL_OLD
        shutil.rmtree(old, ignore_errors=True)
        if current.exists():
            os.replace(current, old)
        os.replace(new, current)
        shutil.rmtree(old, ignore_errors=True)


def partial_exists(directory: Path) -> bool:
    """Whether ``directory`` holds a partial checkpoint (current or stale)."""
    return any(
        (Path(directory) / name / "state.json").is_file() for name in (PARTIAL, _PARTIAL_OLD)
    )


def remove_partial(directory: Path) -> None:
    for name in (PARTIAL, _PARTIAL_OLD, _PARTIAL_NEW):
        shutil.rmtree(Path(directory) / name, ignore_errors=True)


def read_partial(directory: Path, epochs_done: int) -> dict | None:
    """The partial checkpoint of epoch ``epochs_done`` (the one after the last finished
    epoch), with its ``model`` path; None when there is none (one of an epoch since
    finished is stale and removed; a ``partial.new`` is half written and removed). A
    damaged one is a one-line ``RunError``."""
    directory = Path(directory)
    shutil.rmtree(directory / _PARTIAL_NEW, ignore_errors=True)
    for name in (PARTIAL, _PARTIAL_OLD):  # partial.old alone: killed between two renames
        folder = directory / name
        if not (folder / "state.json").is_file():
            continue
        path = folder / "state.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise RunError(f"{path}: damaged partial checkpoint, not JSON ({error})") from None
        if not (
            isinstance(state, dict)
            and all(isinstance(state.get(key), int) for key in ("epoch", "batches"))
            and isinstance(state.get("metrics"), dict)
            and isinstance(state.get("seconds"), (int, float))
            and (folder / "model.keras").is_file()
        ):
            raise RunError(
                f"{path}: damaged partial checkpoint (remove {folder} to resume from the "
                "last finished epoch)"
            )
        if state["epoch"] != epochs_done:
            break  # of an epoch that has finished since
        carried = None
        if (folder / "carried.npz").is_file():
            try:
                with np.load(folder / "carried.npz") as arrays:
                    carried = [arrays[f"arr_{index}"] for index in range(len(arrays.files))]
            except (OSError, ValueError, KeyError) as error:
                raise RunError(
                    f"{folder / 'carried.npz'}: damaged partial checkpoint ({error})"
                ) from None
        return {**state, "model": folder / "model.keras", "carried": carried}
    remove_partial(directory)
    return None


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

    def carry(self, seconds: float) -> None:
        """Counts ``seconds`` of this epoch trained before an interruption (a partial
        checkpoint's) as this epoch's."""
        self._epoch_seconds += seconds

    def epoch_seconds(self) -> float:
        """This epoch's training seconds so far."""
        running = time.perf_counter() - self._start if self._start is not None else 0.0
        return self._epoch_seconds + running

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


def _skipped_batches(skipped, epoch: int) -> int:
    """Batches of ``epoch`` trained before a resume within it (``skipped``: (epoch,
    batches) or None)."""
    return skipped[1] if skipped and skipped[0] == epoch else 0


class StepLog(keras.callbacks.Callback):
    """``logs/steps.csv``: epoch, step and the training loss as the progress bar shows it
    (the epoch's running mean) after every step; what tells two runs apart step by step
    (one process against several workers), where ``history.csv`` has epochs only."""

    def __init__(self, path: Path, skipped=None):
        super().__init__()
        self.path = Path(path)
        self.epoch, self.offset = 0, 0
        self.skipped = skipped  # (epoch, batches) trained before a resume within it

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.offset = _skipped_batches(self.skipped, epoch)
        if not self.path.is_file():
            self.path.write_text("epoch,step,loss\n", encoding="utf-8")

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            with open(self.path, "a", encoding="utf-8") as file:
                step = self.offset + batch
                file.write(f"{self.epoch},{step},{float(logs['loss']):.9g}\n")


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

    def __init__(self, epochs: int, steps_per_epoch: int, skipped=None):
        super().__init__()
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.skipped = skipped  # (epoch, batches) trained before a resume within it
        self.bar = None
        self.started = 0.0
        self.offset = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.offset = _skipped_batches(self.skipped, epoch)
        if on_terminal():
            later = (self.epochs - epoch - 1) * self.steps_per_epoch
            label = f"epoch {epoch + 1}/{self.epochs}"
            self.bar = ProgressBar(label, self.steps_per_epoch, "batches", after=later)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            loss = (logs or {}).get("loss")
            done = self.offset + batch + 1
            self.bar.update(done, "" if loss is None else f"loss {float(loss):.4g}")

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
