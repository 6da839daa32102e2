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
    BatchCheckpoint,
    EpochCheckpoint,
    EpochProgress,
    NonFiniteLossGuard,
    PlateauDecay,
    StageEstimate,
    StepLog,
    Throughput,
    ValidateAveragedWeights,
    partial_exists,
    read_checkpoint_state,
    read_partial,
    restore_random_states,
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


def draw_past_epochs(train, epochs: int) -> None:
    """Moves ``train``'s per-epoch draws (a sampler's offset and order, a shuffle's order:
    ``rerandomize_each_iteration``, ``reshuffle_each_iteration``) past ``epochs``
    epochs, so that a resumed run's next epoch draws what it would have drawn without
    the interruption. Each new iterator takes the next draw from the seed; one batch is
    read from each, as the draw is made when the iteration starts
    (``tests/test_partial_checkpoints.py`` checks a resumed run against an uninterrupted
    one)."""
    for _ in range(epochs):
        iterator = iter(train)
        next(iterator, None)
        del iterator


def phases(train, steps_per_epoch, initial_epoch: int, epochs: int, skipped=None):
    """The ``model.fit`` calls that train epochs ``initial_epoch`` to ``epochs``: (batches,
    steps per epoch, first epoch, end epoch). One, unless the first epoch resumes after
    its batch ``skipped[1]`` (a partial checkpoint): then that epoch alone, without the
    batches it trained, and the others in a second. An endless stream (``steps_per_epoch``
    set) goes on from where the batches trained left it; a sampler's or a shuffle's epoch
    gives the same batches again (``draw_past_epochs``), and the resumed epoch trains on
    those after that count. An epoch checkpointed after its last batch has none left: it
    is validated and ends."""
    skip = skipped[1] if skipped else 0
    if not steps_per_epoch:
        if skip:
            yield train.skip(skip), None, initial_epoch, initial_epoch + 1
            initial_epoch += 1
        if initial_epoch < epochs:
            yield train, None, initial_epoch, epochs
        return
    start = initial_epoch * steps_per_epoch
    if skip:
        rest = steps_per_epoch - skip
        if rest > 0:
            yield train.skip(start + skip), rest, initial_epoch, initial_epoch + 1
        else:
            yield train.take(0), None, initial_epoch, initial_epoch + 1
        initial_epoch, start = initial_epoch + 1, start + steps_per_epoch
    if initial_epoch < epochs:
        yield train.skip(start), steps_per_epoch, initial_epoch, epochs


def train(
    task,
    recipe: dict,
    data,
    run: RunDirectory,
    resume: bool,
    stage=None,
    dist=None,
    checkpoint_minutes: float = 0.0,
) -> TrainingResult:
    """``fit``, after a pretraining ``stage`` when there is one: ``(stage_recipe,
    stage_data, description)`` from the task (language models: ``pretrain.source``).
    The stage is a run of its own in ``run/pretrain/`` with its checkpoints, so
    ``resume`` continues whichever stage was interrupted; once training proper has a
    checkpoint, the stage is done with."""
    every = {"checkpoint_minutes": checkpoint_minutes}
    if stage is None:
        result = fit(task, recipe, data, run, resume, dist=dist, **every)
        draw_curves(run, [("training", result.history)], dist)
        return result
    stage_run = run.stage("pretrain")
    if resume and (read_checkpoint_state(run.checkpoints) or partial_exists(run.checkpoints)):
        result = fit(task, recipe, data, run, resume, dist=dist, **every)
    else:
        stage_recipe, stage_data, description = stage
        print(f"zoo: pretraining on {description}", file=sys.stderr)
        pretrained = fit(
            task,
            stage_recipe,
            stage_data,
            stage_run,
            resume,
            estimate="pretraining",
            dist=dist,
            **every,
        )
        print("zoo: pretraining done; training on the recipe's data", file=sys.stderr)
        result = fit(
            task, recipe, data, run, resume, start_from=pretrained.model, dist=dist, **every
        )
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
    checkpoint_minutes: float = 0.0,
) -> TrainingResult:
    """Trains ``task``'s model on ``data`` for the recipe's epochs, checkpointing each
    epoch into ``run``; with ``resume`` it continues from the last checkpoint.

    ``start_from``: a model to train further (with a new optimizer) instead of a new
    one. ``data.steps_per_epoch``, when a data object has it and it is set, marks an
    endless training stream cut into epochs of that many batches. ``estimate``: a label
    under which to say, after the first batches, how long the rest is expected to take.
    ``dist``: the ``tf.distribute`` setting (``zoo.training.distribute``); only its chief
    writes checkpoints and logs. ``checkpoint_minutes``: how often an epoch in progress
    is checkpointed too (``BatchCheckpoint``; 0: at epoch ends only), in a run of one
    process; ``resume`` then goes on from that batch."""
    dist = dist or Distribution()
    state = read_checkpoint_state(run.checkpoints) if resume else None
    within = dist.strategy is None  # a worker of several resumes from epochs only
    partial = (
        read_partial(run.checkpoints, state["epochs_done"] if state else 0)
        if resume and within
        else None
    )
    with dist.scope():  # the variables are mirrored over the replicas
        if partial is not None:
            model = run.load_model(partial["model"])
            restore_random_states(model, partial.get("random_states"), partial["epoch"] + 1)
            state = state or {"recipe_sha256": recipe_hash(recipe), "epochs_done": 0, "history": {}}
            initial_epoch = state["epochs_done"]
            print(
                f"zoo: resuming {run.path} in epoch {initial_epoch + 1}, after its batch "
                f"{partial['batches']}",
                file=sys.stderr,
            )
        elif state is not None:
            model = run.load_model(run.checkpoints / "last.keras")
            restore_random_states(model, state.get("random_states"), state["epochs_done"])
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
    skipped = (initial_epoch, partial["batches"]) if partial else None  # done before
    if within and (checkpoint_minutes > 0 or partial):
        # after Throughput, whose epoch seconds it carries over
        callbacks.insert(
            2, BatchCheckpoint(run.checkpoints, checkpoint_minutes, throughput, partial)
        )
    steps_per_epoch = getattr(data, "steps_per_epoch", None)
    if dist.chief:
        callbacks += [
            EpochProgress(epochs, steps_per_epoch or task.steps_per_epoch(data, recipe), skipped),
            keras.callbacks.CSVLogger(str(run.logs / "history.csv"), append=True),
            StepLog(run.logs / "steps.csv", skipped),
            keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False),
        ]
    if estimate:
        batches_left = (epochs - initial_epoch) * (
            steps_per_epoch or task.steps_per_epoch(data, recipe)
        )
        callbacks.append(StageEstimate(estimate, batches_left))
    validation = data.validation
    if dist.strategy is not None:  # each replica reads its part of every batch
        validation = sharded(validation)
    if initial_epoch < epochs and not stopped_early:
        # Samplers draw a new offset each epoch, so the batch count is only known after
        # the first; Keras warns about that once, needlessly.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        if within and not steps_per_epoch:
            draw_past_epochs(data.train, initial_epoch)
        for batches, steps, first_epoch, last_epoch in phases(
            data.train, steps_per_epoch, initial_epoch, epochs, skipped
        ):
            if dist.strategy is not None:  # each replica reads its part of every batch
                batches = sharded(batches)
            try:
                with dist.fitting():  # Keras' trainer fixed for this strategy, for this fit only
                    model.fit(
                        batches,
                        steps_per_epoch=steps,
                        validation_data=validation,
                        epochs=last_epoch,
                        initial_epoch=first_epoch,
                        callbacks=callbacks,
                        shuffle=False,  # the datasets shuffle themselves, from the seed
                        verbose=0,  # EpochProgress shows it, on stderr
                    )
            except tf.errors.OpError as error:
                if dist.kind != "multi_worker":
                    raise
                # a run-time failure (exit 1), not a bad input
                raise Failure(lost_worker_message(error, run, dist)) from None
            if model.stop_training or guard.tripped:  # early stopping, or a NaN loss
                break
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
