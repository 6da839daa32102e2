"""The fit loop shared by every task: compile, checkpoint, resume, stop on NaN."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.errors import Failure, ZooError
from zoo.recipe import recipe_hash
from zoo.training.callbacks import (
    EpochCheckpoint,
    EpochProgress,
    NonFiniteLossGuard,
    PlateauDecay,
    StageEstimate,
    StepLog,
    Throughput,
    ValidateAveragedWeights,
    read_checkpoint_state,
)
from zoo.training.distribute import Distribution
from zoo.training.optimizers import OPTIMIZERS
from zoo.training.run_directory import CURVES, RunDirectory


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
    distribution: Distribution = field(default_factory=Distribution)


def sharded(dataset):
    """``dataset`` cut by batch pieces across workers (replica r of R reads the r-th part
    of each batch), said explicitly: TensorFlow would otherwise try files first, and warn."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def rebuilt(task, recipe: dict, data, model):
    """``model`` (pretrained without a strategy, or under another) built anew in the
    current strategy's scope with the same weights."""
    copy = task.build_model(recipe, data)
    copy.set_weights(model.get_weights())
    return copy


def lost_worker_message(error, run, dist) -> str:
    """One line for a distributed job that lost a worker or could not reach it."""
    state = read_checkpoint_state(run.checkpoints) or {}
    done = state.get("epochs_done", 0)
    kept = (
        f"epoch {done} is checkpointed in {run.checkpoints}"
        if done
        else "no epoch had finished, so there is no checkpoint"
    )
    reason = (
        str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    )
    return (
        f"worker {dist.worker}: lost contact with the other workers ({type(error).__name__}: "
        f"{reason}); {kept}; start every worker again with --resume"
    )


def learning_rate(train: dict, steps_per_epoch: int):
    """The recipe's learning rate: a constant, or a cosine decay from ``learning_rate``
    to ``min_learning_rate`` over all ``epochs`` (then held there). The schedule is a
    function of the optimizer's step count, which checkpoints keep, so a resumed run
    picks it up where it stopped. ``plateau`` starts from the constant, which
    ``PlateauDecay`` lowers between epochs."""
    if train["lr_schedule"] in ("constant", "plateau"):
        return train["learning_rate"]
    initial = train["learning_rate"]
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial,
        decay_steps=max(1, train["epochs"] * steps_per_epoch),
        alpha=min(1.0, train["min_learning_rate"] / initial) if initial else 0.0,
    )


def make_optimizer(train: dict, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    """The recipe's optimizer; ``clip_norm`` θ clips the global gradient norm,
    ``weight_averaging`` keeps an exponential moving average of the weights, and an
    ``epsilon`` is added to Adam's bias-corrected √v̂, as PyTorch adds it (null: Keras'
    ε and its place; ``zoo.training.optimizers``)."""
    averaging = train["weight_averaging"]
    epsilon = train.get("epsilon")
    chosen = {} if epsilon is None else {"epsilon": epsilon}
    if epsilon is not None and train["optimizer"] in ("adam", "adamw"):
        chosen["bias_corrected_epsilon"] = True
    return OPTIMIZERS[train["optimizer"]](
        learning_rate=learning_rate(train, steps_per_epoch),
        global_clipnorm=train["clip_norm"] or None,
        weight_decay=train["weight_decay"] or None,
        use_ema=averaging is not None,
        ema_momentum=averaging if averaging is not None else 0.99,
        **chosen,
    )


def train(
    task, recipe: dict, data, run: RunDirectory, resume: bool, stage=None, dist=None
) -> TrainingResult:
    """``fit``, after a pretraining ``stage`` when there is one: ``(stage_recipe,
    stage_data, description)`` from the task (language models: ``pretrain.source``).
    The stage is a run of its own in ``run/pretrain/`` with its checkpoints, so
    ``resume`` continues whichever stage was interrupted; once training proper has a
    checkpoint, the stage is done with."""
    if stage is None:
        result = fit(task, recipe, data, run, resume, dist=dist)
        draw_curves(run, [("training", result.history)], dist)
        return result
    stage_run = run.stage("pretrain")
    if resume and read_checkpoint_state(run.checkpoints):
        result = fit(task, recipe, data, run, resume, dist=dist)
    else:
        stage_recipe, stage_data, description = stage
        print(f"zoo: pretraining on {description}", file=sys.stderr)
        pretrained = fit(
            task, stage_recipe, stage_data, stage_run, resume, estimate="pretraining", dist=dist
        )
        print("zoo: pretraining done; training on the recipe's data", file=sys.stderr)
        result = fit(task, recipe, data, run, resume, start_from=pretrained.model, dist=dist)
    stage_state = read_checkpoint_state(stage_run.checkpoints) or {}
    result.pretrain_seconds = stage_state.get("train_seconds", 0.0)
    stages = [("pretraining", stage_state.get("history", {})), ("training", result.history)]
    draw_curves(run, stages, dist)
    return result


def draw_curves(run: RunDirectory, stages: list, dist=None) -> None:
    """``curves.png``: the run's loss and metrics per epoch, by its chief."""
    from zoo.reports.figures import training_curves

    if dist is None or dist.chief:
        training_curves(stages, run.own(CURVES))


def fit(
    task,
    recipe: dict,
    data,
    run: RunDirectory,
    resume: bool,
    start_from=None,
    estimate=None,
    dist: Distribution | None = None,
) -> TrainingResult:
    """Trains ``task``'s model on ``data`` for the recipe's epochs, checkpointing each
    epoch into ``run``; with ``resume`` it continues from the last checkpoint.

    ``start_from``: a model to train further (with a new optimizer) instead of a new
    one. ``data.steps_per_epoch``, when a data object has it and it is set, marks an
    endless training stream cut into epochs of that many batches. ``estimate``: a label
    under which to say, after the first batches, how long the rest is expected to take.
    ``dist``: the ``tf.distribute`` setting (``zoo.training.distribute``); only its chief
    writes checkpoints and logs."""
    dist = dist or Distribution()
    state = read_checkpoint_state(run.checkpoints) if resume else None
    with dist.scope():  # the variables are mirrored over the replicas
        if state is not None:
            model = run.load_model(run.checkpoints / "last.keras")
            initial_epoch = state["epochs_done"]
            if dist.chief:
                print(f"zoo: resuming {run.path} after epoch {initial_epoch}", file=sys.stderr)
        else:
            if start_from is not None and dist.strategy is not None:
                start_from = rebuilt(task, recipe, data, start_from)
            model = start_from if start_from is not None else task.build_model(recipe, data)
            model.compile(
                optimizer=make_optimizer(recipe["train"], task.steps_per_epoch(data, recipe)),
                loss=task.loss(),
                metrics=task.metrics() or None,  # an empty list still builds a container
            )
            state = {"recipe_sha256": recipe_hash(recipe), "epochs_done": 0, "history": {}}
            initial_epoch = 0
        task_callbacks = task.training_callbacks(model, recipe)
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
    train_spec = recipe["train"]
    plateau = (
        [
            PlateauDecay(
                state,
                train_spec["plateau_factor"],
                train_spec["plateau_patience"],
                train_spec["min_learning_rate"],
            )
        ]
        if train_spec["lr_schedule"] == "plateau"
        else []
    )
    callbacks = [
        guard,
        throughput,
        *plateau,  # before EpochCheckpoint, which writes the decayed rate to state.json
        # validation measures the averaged weights; the checkpoint keeps both
        *([ValidateAveragedWeights()] if averaged else []),
        EpochCheckpoint(run.checkpoints, state, guard, patience, write=dist.chief),
        *task_callbacks,
    ]
    steps_per_epoch = getattr(data, "steps_per_epoch", None)
    if dist.chief:
        callbacks += [
            EpochProgress(epochs, steps_per_epoch or task.steps_per_epoch(data, recipe)),
            keras.callbacks.CSVLogger(str(run.logs / "history.csv"), append=True),
            StepLog(run.logs / "steps.csv"),
            keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False),
        ]
    if estimate:
        batches_left = (epochs - initial_epoch) * (
            steps_per_epoch or task.steps_per_epoch(data, recipe)
        )
        callbacks.append(StageEstimate(estimate, batches_left))
    # an endless stream goes on from where the finished epochs left it
    batches = data.train.skip(initial_epoch * steps_per_epoch) if steps_per_epoch else data.train
    validation = data.validation
    if dist.strategy is not None:  # each replica reads its part of every batch
        batches, validation = sharded(batches), sharded(validation)
    if initial_epoch < epochs and not stopped_early:
        # Samplers draw a new offset each epoch, so the batch count is only known after
        # the first; Keras warns about that once, needlessly.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        try:
            with dist.fitting():  # Keras' trainer fixed for this strategy, for this fit only
                model.fit(
                    batches,
                    steps_per_epoch=steps_per_epoch,
                    validation_data=validation,
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    callbacks=callbacks,
                    shuffle=False,  # the datasets shuffle themselves, reproducibly from the seed
                    verbose=0,  # EpochProgress shows it, on stderr
                )
        except tf.errors.OpError as error:
            if dist.kind != "multi_worker":
                raise
            # a run-time failure (exit 1), not a bad input
            raise Failure(lost_worker_message(error, run, dist)) from None
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
    # the epoch with the lowest validation loss; read without the strategy (plain
    # variables: creating mirrored ones would need every worker to take part), by the
    # chief only, which evaluates and exports
    if (run.checkpoints / "best.keras").is_file() and dist.chief:
        model = run.load_model(run.checkpoints / "best.keras")
    if dist.chief:
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
