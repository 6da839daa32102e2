"""A run directory keeps what it did not create: failed and interrupted starts leave
the folder as it was, and Ctrl-C speaks of --resume only when there is something to resume."""

import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.tasks.language_modeling import LanguageModeling
from zoo.training.run_directory import RunDirectory, RunError


def test_discard_removes_only_what_this_process_created(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    run = RunDirectory(folder)
    run.start({"name": "x"}, resume=False)
    (folder / "vocab.txt").write_text("<unk>\n")
    (folder / "notes.txt").write_text("the user's, written meanwhile\n")
    run.discard()
    run.unlock()
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]

    nested = tmp_path / "a" / "b" / "run"
    run = RunDirectory(nested)
    run.start({"name": "x"}, resume=False)
    run.discard()
    run.unlock()
    assert list(tmp_path.iterdir()) == [folder]  # the folders it made for the run, too


def test_a_folder_of_the_users_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "notes.txt").write_text("keep\n")
    with pytest.raises(RunError, match="not empty and not a zoo run .*'notes.txt'"):
        RunDirectory(tmp_path).start({"name": "x"}, resume=True)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_data_preparation_leaves_the_folder_as_it_was(
    tmp_path, small_recipe, monkeypatch
):
    monkeypatch.setattr(LanguageModeling, "prepare", interrupt)
    out = tmp_path / "empty"
    out.mkdir()
    result = CliRunner().invoke(cli, ["run", "recipe", str(small_recipe()), "--out", str(out)])
    assert result.exit_code == 130
    assert result.stderr == f"zoo: interrupted; during data preparation; {out} is as it was\n"
    assert list(out.iterdir()) == []


def test_ctrl_c_during_training_mentions_resume_only_after_an_epoch(
    tmp_path, small_recipe, monkeypatch
):
    import zoo.training.trainer

    monkeypatch.setattr(zoo.training.trainer, "train", interrupt)
    out = tmp_path / "run"
    args = ["train", str(small_recipe()), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130 and "--resume" not in result.stderr
    assert "no epoch had finished" in result.stderr and not out.exists()

    def one_epoch_then_interrupt(task, recipe, data, run, *args):
        (run.checkpoints / "state.json").write_text('{"epochs_done": 1}')
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo.training.trainer, "train", one_epoch_then_interrupt)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130
    assert result.stderr == (
        "zoo: interrupted; finished epochs are checkpointed: rerun with --resume\n"
    )
    assert (out / "recipe.yaml").is_file() and (out / "checkpoints" / "state.json").is_file()
