"""A run directory keeps what it did not create: a folder is a run only when zoo wrote it
(its marker, or an earlier zoo's run recognised by its whole content), failed and
interrupted starts (Ctrl-C, SIGTERM, SIGHUP) leave the folder as it was, and an
interruption speaks of --resume only when there is something to resume."""

import errno
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.errors import classify
from zoo.tasks.language_modeling import LanguageModeling
from zoo.training.run_directory import (
    MARKER,
    RUN_ENTRIES,
    RunDirectory,
    RunError,
    legacy_run_problem,
    read_marker,
)

SAVED_MODELS = Path(__file__).resolve().parent.parent / "zoo" / "saved_models"


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


def test_a_run_of_an_earlier_zoo_is_recognised_by_content_and_marked_once(
    trained_run, tmp_path, capsys
):
    _, source = trained_run
    run_folder = tmp_path / "old"
    shutil.copytree(source, run_folder)
    (run_folder / MARKER).unlink()  # as runs were written before the marker
    run = RunDirectory(run_folder)
    assert legacy_run_problem(run_folder) is None and run.is_run()

    path = run.own("translations-test.tsv")
    assert path == run_folder / "translations-test.tsv"
    assert "a run of an earlier zoo, recognised by its content" in capsys.readouterr().err
    marker = read_marker(run_folder)
    assert {"model.keras", "vocab.txt", "translations-test.tsv"} <= set(marker["entries"])
    run.own("metrics-test.json")
    assert read_marker(run_folder)["run_id"] == marker["run_id"]  # marked once
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda folder: (folder / "thesis.tex").write_text("x"), "'thesis.tex'"),
        (lambda folder: (folder / "logs" / "mine.txt").write_text("x"), "'logs/mine.txt'"),
        (lambda folder: (folder / "model.keras").write_text("mine"), "not a Keras archive"),
        (lambda folder: (folder / "pretrain" / "notes").mkdir(parents=True), "pretrain/notes"),
        (lambda folder: (folder / "recipe.yaml").write_text("name: x\n"), "sha256"),
        (
            lambda folder: (
                shutil.rmtree(folder / "checkpoints") or (folder / "model.keras").unlink()
            ),
            "neither checkpoints/ nor model.keras",
        ),
    ],
)
def test_a_folder_without_the_marker_is_a_run_only_by_its_whole_content(
    trained_run, tmp_path, change, problem
):
    _, source = trained_run
    folder = tmp_path / "old"
    shutil.copytree(source, folder)
    (folder / MARKER).unlink()
    change(folder)
    assert problem in legacy_run_problem(folder)
    assert not RunDirectory(folder).is_run()
    with pytest.raises(RunError, match="not a zoo run"):
        RunDirectory(folder).own("metrics-test.json")


def test_the_shipped_models_are_runs_of_an_earlier_zoo_or_exports():
    from zoo.export.ownership import ownership_problem

    for folder in sorted(SAVED_MODELS.iterdir()):
        if (folder / "export.json").is_file():  # an export-only model: zoo's by its listing
            assert ownership_problem(folder) is None, folder
        elif folder.is_dir():
            assert legacy_run_problem(folder) is None, folder


def test_zoo_writes_a_name_only_when_its_marker_lists_it(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.start({"name": "x"}, resume=False)
    assert set(RUN_ENTRIES) <= set(read_marker(run.path)["entries"])
    (run.path / "translations.tsv").write_text("the user's\n")
    with pytest.raises(RunError, match="translations.tsv: not written by zoo"):
        run.own("translations.tsv")
    run.results_label = "test-beam4-alpha0.75"
    path = run.result_path("translations.tsv")
    assert path.name == "translations-test-beam4-alpha0.75.tsv"
    assert path.name in read_marker(run.path)["entries"]
    run.unlock()


def test_evaluate_claims_its_result_file_before_any_work(trained_run, tmp_path, monkeypatch):
    import zoo.training.run_directory as run_directory

    _, source = trained_run
    shutil.copytree(source, tmp_path / "run")
    before = sorted(path.name for path in (tmp_path / "run").iterdir())

    def read_only(path, text):  # as on a read-only disk (root ignores chmod)
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    def no_work(*args, **kwargs):
        raise AssertionError("evaluated although its results could not be written")

    monkeypatch.setattr(run_directory, "write_atomically", read_only)
    monkeypatch.setattr(LanguageModeling, "prepare", no_work)
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--split", "test"])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("zoo: error: permission denied: ")
    assert "zoo-run.json (Read-only file system)" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == before


def test_a_run_folder_deleted_during_training_is_a_failure_in_one_line(
    tmp_path, small_recipe, monkeypatch
):
    import zoo.training.trainer

    def delete_the_run(task, recipe, data, run, *args):
        shutil.rmtree(run.path)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(run.logs))

    monkeypatch.setattr(zoo.training.trainer, "train", delete_the_run)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(small_recipe()), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"zoo: error: {out}: the run folder disappeared during training (deleted or moved); "
        "nothing is left to resume\n"
    )


@pytest.mark.parametrize(
    "error, code, says",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/r/model.keras"),
            1,
            "disk full: /r/model.keras: no space left on the device",
        ),
        (RuntimeError("ResourceExhaustedError: /r/x; No space left on device"), 1, "disk full: "),
        (PermissionError(errno.EACCES, "Permission denied", "/r"), 2, "permission denied: /r"),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/r/x"),
            2,
            "/r/x: no such file or folder",
        ),
        (MemoryError("48 TB"), 1, "out of memory (MemoryError): 48 TB"),
        (ValueError("a bug"), 1, "ValueError: a bug (ZOO_DEBUG=1 shows the traceback)"),
    ],
)
def test_errors_are_classified_by_cause(error, code, says):
    assert classify(error)[0] == code and classify(error)[1].startswith(says)


def test_a_disk_full_behind_another_error_is_still_a_disk_full():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/r/export/model.tflite")
        except OSError as cause:
            raise RuntimeError("could not write the export") from cause
    except RuntimeError as error:
        assert classify(error) == (
            1,
            "disk full: /r/export/model.tflite: no space left on the device; free some space "
            "and retry",
        )


# A real process each (seconds), in the slow set as the kill loops are; the cleanup they
# share with Ctrl-C is checked in-process above.
@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_as_ctrl_c_does(tmp_path, small_recipe, signal_number):
    """A real process, stopped by the signal while it prepares or trains: one line, exit
    128 + the signal, and either nothing left (no epoch had finished) or a resumable run."""
    out = tmp_path / "empty"
    out.mkdir()
    recipe = small_recipe(epochs=50)
    command = [sys.executable, "-m", "zoo.cli.main", "train", str(recipe), "--out", str(out)]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    deadline = time.time() + 120
    while not (out / "recipe.yaml").exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    name = signal.Signals(signal_number).name
    assert process.returncode == 128 + signal_number, stderr
    (line,) = stderr.splitlines()
    if (out / "checkpoints" / "state.json").exists():
        assert (
            line
            == f"zoo: interrupted ({name}); finished epochs are checkpointed: rerun with --resume"
        )
    else:
        assert line.startswith(f"zoo: interrupted ({name}); ") and line.endswith("is as it was")
        assert list(out.iterdir()) == []
