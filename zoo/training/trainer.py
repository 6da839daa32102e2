"""The fit loop shared by every task: compile, checkpoint, resume, stop on NaN."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import keras

from zoo.errors import ZooError
from zoo.recipe import recipe_hash
from zoo.training.callbacks import (
    EpochCheckpoint,
    NonFiniteLossGuard,
    StageEstimate,
    Throughput,
    ValidateAveragedWeights,
    read_checkpoint_state,
)
from zoo.training.optimizers import OPTIMIZERS
from zoo.training.run_directory import RunDirectory


class TrainingError(ZooError):
    """Training stopped and cannot go on as it is (a non-finite loss)."""


@dataclass
class TrainingResult:
    model: keras.Model
    history: dict = field(default_factory=dict)
    epochs_done: int = 0
    best_epoch: int | None = None
    seconds: float = 0.0
    tokens_per_sec: float = 0.0
    resumed_from: int = 0
    pretrain_seconds: float = 0.0


def learning_rate(train: dict, steps_per_epoch: int):
    """The recipe's learning rate: a constant, or a cosine decay from ``learning_rate``
    to ``min_learning_rate`` over all ``epochs`` (then held there). The schedule is a
    function of the optimizer's step count, which checkpoints keep, so a resumed run
    picks it up where it stopped."""
    if train["lr_schedule"] == "constant":
        return train["learning_rate"]
    initial = train["learning_rate"]
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial,
        decay_steps=max(1, train["epochs"] * steps_per_epoch),
        alpha=min(1.0, train["min_learning_rate"] / initial) if initial else 0.0,
    )


def make_optimizer(train: dict, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    """The recipe's optimizer; ``clip_norm`` θ clips the global gradient norm and
    ``weight_averaging`` keeps an exponential moving average of the weights."""
    averaging = train["weight_averaging"]
    return OPTIMIZERS[train["optimizer"]](
        learning_rate=learning_rate(train, steps_per_epoch),
        global_clipnorm=train["clip_norm"] or None,
        weight_decay=train["weight_decay"] or None,
        use_ema=averaging is not None,
        ema_momentum=averaging if averaging is not None else 0.99,
    )


def train(task, recipe: dict, data, run: RunDirectory, resume: bool, stage=None) -> TrainingResult:
    """``fit``, after a pretraining ``stage`` when there is one: ``(stage_recipe,
    stage_data, description)`` from the task (language models: ``pretrain.source``).
    The stage is a run of its own in ``run/pretrain/`` with its checkpoints, so
    ``resume`` continues whichever stage was interrupted; once training proper has a
    checkpoint, the stage is done with."""
    if stage is None:
        return fit(task, recipe, data, run, resume)
    stage_run = run.stage("pretrain")
    if resume and read_checkpoint_state(run.checkpoints):
        result = fit(task, recipe, data, run, resume)
    else:
        stage_recipe, stage_data, description = stage
        print(f"zoo: pretraining on {description}", file=sys.stderr)
        pretrained = fit(task, stage_recipe, stage_data, stage_run, resume, estimate="pretraining")
        print("zoo: pretraining done; training on the recipe's data", file=sys.stderr)
        result = fit(task, recipe, data, run, resume, start_from=pretrained.model)
    stage_state = read_checkpoint_state(stage_run.checkpoints) or {}
    result.pretrain_seconds = stage_state.get("train_seconds", 0.0)
    return result


def fit(
    task, recipe: dict, data, run: RunDirectory, resume: bool, start_from=None, estimate=None
) -> TrainingResult:
    """Trains ``task``'s model on ``data`` for the recipe's epochs, checkpointing each
    epoch into ``run``; with ``resume`` it continues from the last checkpoint.

    ``start_from``: a model to train further (with a new optimizer) instead of a new
    one. ``data.steps_per_epoch``, when a data object has it and it is set, marks an
    endless training stream cut into epochs of that many batches. ``estimate``: a label
    under which to say, after the first batches, how long the rest is expected to take."""
    state = read_checkpoint_state(run.checkpoints) if resume else None
    if state is not None:
        model = run.load_model(run.checkpoints / "last.keras")
        initial_epoch = state["epochs_done"]
        print(f"zoo: resuming {run.path} after epoch {initial_epoch}", file=sys.stderr)
    else:
        model = start_from if start_from is not None else task.build_model(recipe, data)
        model.compile(
            optimizer=make_optimizer(recipe["train"], task.steps_per_epoch(data, recipe)),
            loss=task.loss(),
            metrics=task.metrics() or None,  # an empty list still builds a metrics container
        )
        state = {"recipe_sha256": recipe_hash(recipe), "epochs_done": 0, "history": {}}
        initial_epoch = 0
    epochs = recipe["train"]["epochs"]
    patience = recipe["train"]["patience"]
    guard = NonFiniteLossGuard()
    throughput = Throughput(task.tokens_per_epoch(data), state)  # totals kept in state.json
    stopped_early = (
        patience
        and state.get("best_epoch")
        and (state["epochs_done"] - state["best_epoch"] >= patience)
    )
    averaged = bool(getattr(model.optimizer, "use_ema", False))
    callbacks = [
        guard,
        throughput,
        # validation measures the averaged weights; the checkpoint keeps both
        *([ValidateAveragedWeights()] if averaged else []),
        EpochCheckpoint(run.checkpoints, state, guard, patience),
        keras.callbacks.CSVLogger(str(run.logs / "history.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False),
    ]
    if hasattr(task, "training_callbacks"):
        callbacks += task.training_callbacks(model, recipe)
    steps_per_epoch = getattr(data, "steps_per_epoch", None)
    if estimate:
        batches_left = (epochs - initial_epoch) * (
            steps_per_epoch or task.steps_per_epoch(data, recipe)
        )
        callbacks.append(StageEstimate(estimate, batches_left))
    # an endless stream goes on from where the finished epochs left it
    batches = data.train.skip(initial_epoch * steps_per_epoch) if steps_per_epoch else data.train
    if initial_epoch < epochs and not stopped_early:
        # Samplers draw a new offset each epoch, so the batch count is only known after
        # the first; Keras warns about that once, needlessly.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            batches,
            steps_per_epoch=steps_per_epoch,
            validation_data=data.validation,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the datasets shuffle themselves, reproducibly from the seed
            verbose=1 if sys.stdout.isatty() else 2,
        )
    if guard.tripped:
        epoch, batch, loss = guard.tripped
        kept = read_checkpoint_state(run.checkpoints)
        kept_note = (
            f"the last good checkpoint (epoch {kept['epochs_done']}) is kept in {run.checkpoints}"
            if kept
            else "no epoch had finished, so there is no checkpoint"
        )
        raise TrainingError(
            f"the training loss became {loss} at epoch {epoch + 1}, batch {batch + 1}, so training "
            f"stopped; {kept_note}; lower train.learning_rate or set train.clip_norm"
        )
    if (run.checkpoints / "best.keras").is_file():  # the epoch with the lowest validation loss
        model = run.load_model(run.checkpoints / "best.keras")
    model.save(run.model_path)
    return TrainingResult(
        model=model,
        history=state["history"],
        epochs_done=state["epochs_done"],
        best_epoch=state.get("best_epoch"),
        seconds=throughput.seconds,
        tokens_per_sec=throughput.tokens_per_sec,
        resumed_from=initial_epoch,
    )
