"""Checkpoints within an epoch (``--checkpoint-minutes``): an interrupted run resumes at
the batch it had checkpointed, not at the start of its epoch, and loses nothing else."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.errors import Interrupted
from zoo.pipeline import train_recipe
from zoo.training import callbacks
from zoo.training.callbacks import BatchCheckpoint
from zoo.training.run_directory import RunError

EVERY_BATCH = 1e-9  # minutes: a partial checkpoint after every batch


def interrupt_after_saves(monkeypatch, saves: int):
    """Raises KeyboardInterrupt (as Ctrl-C would) at the start of the batch after
    ``saves`` partial checkpoints were written: the run stops after batch ``saves``."""
    save, written = BatchCheckpoint.save, []

    def counted(self, batches):
        save(self, batches)
        written.append(batches)

    def stop(self, batch, logs=None):
        if len(written) == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(BatchCheckpoint, "save", counted)
    monkeypatch.setattr(BatchCheckpoint, "on_train_batch_begin", stop, raising=False)
    return written


def steps(run_dir) -> list[tuple[int, int]]:
    with open(run_dir / "logs" / "steps.csv", encoding="utf-8") as file:
        return [(int(row["epoch"]), int(row["step"])) for row in csv.DictReader(file)]


def test_an_interrupted_epoch_resumes_at_its_batch_as_if_never_interrupted(
    tmp_path, small_recipe, monkeypatch
):
    """The first epoch of a process draws the same batches again, so a run interrupted
    in it and resumed trains exactly what an uninterrupted run trains: the same losses,
    and every batch once."""
    recipe = str(small_recipe(export={"formats": []}))
    whole = tmp_path / "whole"
    run, *_, uninterrupted = train_recipe(recipe, out=str(whole), checkpoint_minutes=0)
    run.unlock()
    assert not (whole / "checkpoints" / "partial").exists()

    out = tmp_path / "interrupted"
    written = interrupt_after_saves(monkeypatch, 20)
    with pytest.raises(Interrupted) as interrupted:
        train_recipe(recipe, out=str(out), checkpoint_minutes=EVERY_BATCH)
    assert str(interrupted.value) == "the epoch in progress is checkpointed: rerun with --resume"
    assert written == list(range(1, 21))
    partial = json.loads((out / "checkpoints" / "partial" / "state.json").read_text())
    assert (partial["epoch"], partial["batches"]) == (0, 20) and partial["seconds"] > 0
    assert not (out / "checkpoints" / "state.json").exists()  # no epoch had finished

    monkeypatch.undo()
    run, *_, resumed = train_recipe(recipe, out=str(out), resume=True, checkpoint_minutes=0)
    run.unlock()
    assert resumed.epochs_done == uninterrupted.epochs_done == 2
    for key, values in uninterrupted.history.items():
        assert resumed.history[key] == pytest.approx(values, rel=1e-4), key
    # each batch of each epoch trained once: the resumed epoch went on from batch 20
    assert steps(out) == steps(whole)
    assert not (out / "checkpoints" / "partial").exists()  # its epoch is checkpointed
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["timed_epochs"] == 2 and state["train_seconds"] >= partial["seconds"]


def test_an_interruption_after_an_epoch_resumes_within_the_next(
    tmp_path, small_recipe, monkeypatch
):
    recipe = str(small_recipe(epochs=3, export={"formats": []}))
    out = tmp_path / "run"
    save, written = BatchCheckpoint.save, []

    def counted(self, batches):
        save(self, batches)
        written.append((self.epoch, batches))

    def stop_in_the_second_epoch(self, batch, logs=None):
        if written[-1:] == [(1, 5)]:
            raise KeyboardInterrupt

    monkeypatch.setattr(BatchCheckpoint, "save", counted)
    monkeypatch.setattr(BatchCheckpoint, "on_train_batch_begin", stop_in_the_second_epoch)
    with pytest.raises(Interrupted, match="^finished epochs are checkpointed"):
        train_recipe(recipe, out=str(out), checkpoint_minutes=EVERY_BATCH)
    monkeypatch.undo()
    run, *_, result = train_recipe(recipe, out=str(out), resume=True, checkpoint_minutes=0)
    run.unlock()
    assert result.epochs_done == 3 and len(result.history["loss"]) == 3
    second = [step for epoch, step in steps(out) if epoch == 1]
    assert second == list(range(len(second)))  # 0-4 before, 5 on after the resume
    assert len(second) > 5


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
    interrupt_after_saves(monkeypatch, 2)
    out = tmp_path / "run"
    args = ["train", str(small_recipe()), "--out", str(out), "--checkpoint-minutes", "0.0000001"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130
    assert result.stderr == (
        "zoo: interrupted; the epoch in progress is checkpointed: rerun with --resume\n"
    )
    assert (out / "checkpoints" / "partial" / "model.keras").is_file()
