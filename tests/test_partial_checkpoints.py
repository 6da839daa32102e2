"""Checkpoints within an epoch (``--checkpoint-minutes``): an interrupted run resumes at
the batch it had checkpointed, not at the start of its epoch, and loses nothing else."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.errors import Interrupted
from zoo.pipeline import train_recipe
from zoo.training import callbacks
from zoo.training.callbacks import BatchCheckpoint
from zoo.training.run_directory import RunError

EVERY_BATCH = 1e-9  # minutes: a partial checkpoint after every batch


def interrupt_at(monkeypatch, epoch: int, batches: int):
    """BatchCheckpoint checkpointing after batch ``batches`` of ``epoch`` only (the others
    are asked for and counted, not written: saving every batch would take most of the
    test's time), then KeyboardInterrupt at the start of the next batch, as Ctrl-C."""
    save, asked = BatchCheckpoint.save, []

    def only_the_last(self, done):
        asked.append((self.epoch, done))
        if (self.epoch, done) == (epoch, batches):
            save(self, done)

    def stop(self, batch, logs=None):
        if asked[-1:] == [(epoch, batches)]:
            raise KeyboardInterrupt

    monkeypatch.setattr(BatchCheckpoint, "save", only_the_last)
    monkeypatch.setattr(BatchCheckpoint, "on_train_batch_begin", stop)
    return asked


# lm-word-lstm-large's features at a tiny size: every dropout, tied embeddings, the
# sequential sampler's carried state, SGD with the plateau schedule
REGULARIZED = {
    "model": {
        "embedding_dim": 16,
        "tie_embeddings": True,
        "embedding_dropout": 0.1,
        "locked_dropout": 0.4,
        "layers": [{"name": "lstm", "units": 16, "dropout": 0.4}, {"name": "lstm", "units": 16}],
    },
    "train": {
        "optimizer": "sgd",
        "learning_rate": 5.0,
        "clip_norm": 0.25,
        "lr_schedule": "plateau",
    },
}


def recipe_with(small_recipe, sampler="random", epochs=2, regularized=False) -> str:
    path = small_recipe(epochs=epochs, export={"formats": []})
    recipe = yaml.safe_load(path.read_text())
    recipe["data"]["sampler"] = sampler
    if regularized:
        recipe["model"] = REGULARIZED["model"]
        recipe["train"].update(REGULARIZED["train"])
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def trained(recipe, out, **options):
    run, *_, result = train_recipe(recipe, out=str(out), **options)
    run.unlock()
    return result


def assert_same_training(resumed, uninterrupted):
    assert resumed.epochs_done == uninterrupted.epochs_done
    for key, values in uninterrupted.history.items():
        assert resumed.history[key] == pytest.approx(values, rel=1e-4), key


def steps(run_dir) -> list[tuple[int, int]]:
    with open(run_dir / "logs" / "steps.csv", encoding="utf-8") as file:
        return [(int(row["epoch"]), int(row["step"])) for row in csv.DictReader(file)]


@pytest.mark.parametrize("sampler", ["random", pytest.param("sequential", marks=pytest.mark.slow)])
def test_an_interrupted_epoch_resumes_at_its_batch_as_if_never_interrupted(
    tmp_path, small_recipe, monkeypatch, sampler
):
    """A run interrupted within its first epoch and resumed trains exactly what an
    uninterrupted run trains: the same losses, every batch once (with the sequential
    sampler, from the state the rows had reached)."""
    recipe = recipe_with(small_recipe, sampler)
    whole = tmp_path / "whole"
    uninterrupted = trained(recipe, whole, checkpoint_minutes=0)
    assert not (whole / "checkpoints" / "partial").exists()

    out = tmp_path / "interrupted"
    asked = interrupt_at(monkeypatch, 0, 20)
    with pytest.raises(Interrupted) as interrupted:
        train_recipe(recipe, out=str(out), checkpoint_minutes=EVERY_BATCH)
    assert str(interrupted.value) == "the epoch in progress is checkpointed: rerun with --resume"
    assert asked == [(0, done) for done in range(1, 21)]  # at every batch
    partial = json.loads((out / "checkpoints" / "partial" / "state.json").read_text())
    assert (partial["epoch"], partial["batches"]) == (0, 20) and partial["seconds"] > 0
    assert (out / "checkpoints" / "partial" / "carried.npz").is_file() == (sampler != "random")
    assert not (out / "checkpoints" / "state.json").exists()  # no epoch had finished

    monkeypatch.undo()
    assert_same_training(trained(recipe, out, resume=True, checkpoint_minutes=0), uninterrupted)
    assert steps(out) == steps(whole)  # each batch of each epoch trained once
    assert not (out / "checkpoints" / "partial").exists()  # its epoch is checkpointed
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["timed_epochs"] == 2 and state["train_seconds"] >= partial["seconds"]


@pytest.mark.slow  # three runs of three epochs: 15-20 s
@pytest.mark.parametrize("within", [True, False], ids=["within-an-epoch", "between-epochs"])
def test_a_run_interrupted_in_a_later_epoch_resumes_as_if_never_interrupted(
    tmp_path, small_recipe, monkeypatch, within
):
    """Resumed in its third epoch, a run draws that epoch's batches (and the next's) as
    the uninterrupted run did: the past epochs' draws are taken first, and its dropout
    masks go on from the checkpoint's generator states (Keras' ``model.save`` leaves
    them out: each resume drew the first epoch's masks again)."""
    if within:
        recipe = recipe_with(small_recipe, "sequential", epochs=3, regularized=True)
    else:
        recipe = recipe_with(small_recipe, epochs=3, regularized=True)
    uninterrupted = trained(recipe, tmp_path / "whole", checkpoint_minutes=0)
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 2, 5)
    with pytest.raises(Interrupted, match="^finished epochs are checkpointed"):
        train_recipe(recipe, out=str(out), checkpoint_minutes=EVERY_BATCH)
    monkeypatch.undo()
    if not within:  # back to the end of the second epoch
        shutil.rmtree(out / "checkpoints" / "partial")
    assert_same_training(trained(recipe, out, resume=True, checkpoint_minutes=0), uninterrupted)
    third = [step for epoch, step in steps(out) if epoch == 2]
    if within:
        assert third == list(range(len(third)))  # 0-4 before, 5 on after the resume
    else:
        assert third[:5] + third[10:] == list(range(len(third) - 5))  # 0-4, then all again


@pytest.mark.slow  # two runs: 15 s
def test_a_run_checkpointed_after_the_last_batch_of_an_epoch_keeps_its_figures(
    tmp_path, small_recipe, monkeypatch
):
    """Interrupted during validation, after the epoch's last batch was checkpointed: the
    resumed epoch has no batch left; it is validated as the uninterrupted one, the next
    epoch trains as it did, and the epoch's loss is the saved running mean of its batches
    (steps.csv's last line of the epoch)."""
    recipe = recipe_with(small_recipe)
    whole = tmp_path / "whole"
    uninterrupted = trained(recipe, whole, checkpoint_minutes=0)
    last = sum(1 for epoch, _ in steps(whole) if epoch == 0)
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 0, last)

    def interrupt_validation(self, logs=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(BatchCheckpoint, "on_test_begin", interrupt_validation, raising=False)
    with pytest.raises(Interrupted, match="^the epoch in progress is checkpointed"):
        train_recipe(recipe, out=str(out), checkpoint_minutes=EVERY_BATCH)
    monkeypatch.undo()
    saved = json.loads((out / "checkpoints" / "partial" / "state.json").read_text())["metrics"]
    resumed = trained(recipe, out, resume=True, checkpoint_minutes=0)
    for key in ("val_loss", "val_perplexity"):
        assert resumed.history[key] == pytest.approx(uninterrupted.history[key], rel=1e-4)
    assert resumed.history["loss"][1] == pytest.approx(uninterrupted.history["loss"][1], rel=1e-4)
    with open(out / "logs" / "steps.csv", encoding="utf-8") as file:
        running = [float(row["loss"]) for row in csv.DictReader(file) if row["epoch"] == "0"]
    assert len(running) == last
    mean = saved["loss/total"] / saved["loss/count"]
    assert resumed.history["loss"][0] == pytest.approx(mean) == pytest.approx(running[-1])


def test_a_partial_checkpoint_of_a_finished_epoch_is_stale_and_removed(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "model.keras").write_bytes(b"")
    state = {"epoch": 1, "batches": 7, "metrics": {}, "seconds": 1.0}
    (tmp_path / "partial" / "state.json").write_text(json.dumps(state))
    (tmp_path / "partial.new").mkdir()  # half written when the process was killed
    assert callbacks.read_partial(tmp_path, epochs_done=1)["batches"] == 7
    assert not (tmp_path / "partial.new").exists()
    assert callbacks.read_partial(tmp_path, epochs_done=2) is None
    assert not (tmp_path / "partial").exists()


def test_the_previous_partial_checkpoint_serves_when_killed_between_two_renames(tmp_path):
    (tmp_path / "partial.old").mkdir()
    (tmp_path / "partial.old" / "model.keras").write_bytes(b"")
    state = {"epoch": 0, "batches": 3, "metrics": {}, "seconds": 1.0}
    (tmp_path / "partial.old" / "state.json").write_text(json.dumps(state))
    found = callbacks.read_partial(tmp_path, epochs_done=0)
    assert found["batches"] == 3 and found["model"] == tmp_path / "partial.old" / "model.keras"


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "damaged partial checkpoint, not JSON"),
        ('{"epoch": "one"}', "damaged partial checkpoint (remove "),
    ],
)
def test_a_damaged_partial_checkpoint_is_one_line(tmp_path, text, message):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "state.json").write_text(text)
    with pytest.raises(RunError) as error:
        callbacks.read_partial(tmp_path, epochs_done=0)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert (tmp_path / "partial" / "state.json").read_text() == text  # left for the user


def test_ctrl_c_after_a_partial_checkpoint_keeps_the_run_and_says_resume(
    tmp_path, small_recipe, monkeypatch
):
    interrupt_at(monkeypatch, 0, 2)
    out = tmp_path / "run"
    args = ["train", str(small_recipe()), "--out", str(out), "--checkpoint-minutes", "0.0000001"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130
    assert result.stderr == (
        "zoo: interrupted; the epoch in progress is checkpointed: rerun with --resume\n"
    )
    assert (out / "checkpoints" / "partial" / "model.keras").is_file()


@pytest.mark.slow  # a translator traced three times: about 40 s
def test_a_translator_resumed_within_a_later_epoch_trains_as_if_never_interrupted(
    tmp_path, monkeypatch
):
    """The translator's pairs are shuffled anew each epoch (``reshuffle_each_iteration``)
    and bucketed: a resume takes the past epochs' shuffles first, so it goes on with the
    same order."""
    from test_translation import write_tiny_translator

    recipe, _ = write_tiny_translator(tmp_path, train={"epochs": 3}, export={"formats": []})
    uninterrupted = trained(str(recipe), tmp_path / "whole", checkpoint_minutes=0)
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 2, 3)
    with pytest.raises(Interrupted, match="^finished epochs are checkpointed"):
        train_recipe(str(recipe), out=str(out), checkpoint_minutes=EVERY_BATCH)
    monkeypatch.undo()
    assert_same_training(
        trained(str(recipe), out, resume=True, checkpoint_minutes=0), uninterrupted
    )


def test_checkpoints_keep_the_dropout_generators_that_keras_saving_leaves_out(tmp_path):
    import numpy as np
    import tensorflow as tf

    from zoo.models import LanguageModel
    from zoo.training.callbacks import random_states, restore_random_states
    from zoo.training.run_directory import RunDirectory

    model = LanguageModel(
        12, embedding_dim=8, locked_dropout=0.5, layers=[{"name": "gru", "units": 8}]
    )
    tokens = tf.ones((4, 5), tf.int32)
    for _ in range(3):  # three batches' masks drawn
        model(tokens, training=True)
    states = random_states(model)
    assert states and all(counter > 0 for _, counter in states)
    model.save(tmp_path / "model.keras")
    loaded = RunDirectory(tmp_path).load_model(tmp_path / "model.keras")
    assert random_states(loaded) != states  # it would draw the first masks again
    restore_random_states(loaded, states)
    assert random_states(loaded) == states
    np.testing.assert_allclose(loaded(tokens, training=True), model(tokens, training=True))

    # a checkpoint of an earlier zoo, without them: the counts move past its epochs
    earlier = RunDirectory(tmp_path).load_model(tmp_path / "model.keras")
    first = random_states(earlier)
    restore_random_states(earlier, None, epochs_done=3)
    assert [count for _, count in random_states(earlier)] == [
        count + 3 * callbacks.DRAWS_PER_EPOCH_BOUND for _, count in first
    ]


def test_the_fit_phases_of_a_resume_within_an_epoch():
    import tensorflow as tf

    from zoo.training.trainer import phases

    stream = tf.data.Dataset.range(100)  # an endless stream cut into epochs of 5 batches

    def plan(*args):
        return [
            (list(batches.take(3).as_numpy_iterator()), steps, first, end)
            for batches, steps, first, end in phases(stream, *args)
        ]

    assert plan(5, 2, 4) == [([10, 11, 12], 5, 2, 4)]
    assert plan(5, 2, 4, (2, 3)) == [([13, 14, 15], 2, 2, 3), ([15, 16, 17], 5, 3, 4)]
    # checkpointed after its last batch: the epoch is only validated
    assert plan(5, 2, 4, (2, 5)) == [([], None, 2, 3), ([15, 16, 17], 5, 3, 4)]
    assert plan(5, 3, 4, (3, 5)) == [([], None, 3, 4)]
    # a sampler's epochs (no steps_per_epoch): the resumed one without its first batches
    assert plan(None, 1, 3, (1, 4)) == [([4, 5, 6], None, 1, 2), ([0, 1, 2], None, 2, 3)]
