"""Which export folders are zoo's (``zoo.export.ownership``) and how an export's files
are checked before they run (issue 24): export.json lists every file zoo wrote with its
sha256; a folder holding anything else is never replaced; folders a killed export left
are removed only when zoo's; a TFLite file or vocabulary from another export is one
line; a full disk is named; stderr stays empty."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.export.manifest import ExportError, file_records, read_manifest, write_manifest
from zoo.export.ownership import (
    PARTIAL_MARKER,
    check_target,
    new_partial,
    ownership_problem,
    remove_stale_partials,
)

SHIPPED_EXPORT = Path(__file__).resolve().parents[1] / "zoo/saved_models/lm-gru-timemachine/export"


def zoo_folder(folder: Path) -> Path:
    """A small folder as an export writes it (no TFLite file: nothing here needs
    TensorFlow): a vocabulary, a card and a SavedModel's files, listed in export.json."""
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "saved_model" / "assets").mkdir()  # empty, as TensorFlow leaves it
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"graph")
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"index")
    (folder / "vocab.txt").write_text("<unk>\na\nb\n")
    (folder / "card.md").write_text("# card\n")
    manifest = {
        "task": "autoregressive",  # the task whose export.json needs the fewest fields
        "recipe": "ar-mlp",
        "recipe_sha256": "0" * 64,
        "zoo_version": "0.1.0",
        "text": {},
        "series": {"tau": 4},
        "usage": ["feed the last tau values"],
    }
    write_manifest(folder, manifest, file_records(folder))
    return folder


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_folder_zoo_wrote_lists_every_file_and_is_zoos(tmp_path):
    folder = zoo_folder(tmp_path / "e")
    listed = [record["path"] for record in read_manifest(folder)["files"]]
    assert listed == [
        "card.md",
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
        "vocab.txt",
    ]
    assert ownership_problem(folder) is None
    check_target(folder)
    (folder / "card.md").unlink()  # a missing file holds nothing to lose
    assert ownership_problem(folder) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: (f / "thesis.tex").write_text("draft"), "thesis.tex is not listed"),
        (lambda f: (f / "saved_model" / "mine.txt").write_text("x"), "saved_model/mine.txt is"),
        (lambda f: (f / "card.md").write_text("# my card\n"), "card.md differs from the file"),
        (lambda f: (f / "vocab.txt").write_text("<unk>\na\nc\n"), "vocab.txt differs"),
        (lambda f: (f / "export.json").write_text("{}"), "export.json: not a zoo export"),
        (lambda f: (f / "export.json").unlink(), "no export.json"),
        (lambda f: (f / "link").symlink_to(f / "card.md"), "link is a link"),
        (lambda f: os.mkfifo(f / "pipe"), "pipe is not a regular file"),
    ],
    ids=["unlisted", "unlisted-inside", "changed", "vocab", "no-format", "no-json", "link", "fifo"],
)
def test_a_folder_holding_anything_else_is_refused_untouched(tmp_path, change, problem):
    folder = zoo_folder(tmp_path / "e")
    change(folder)
    before = sorted(os.listdir(folder))
    assert problem in ownership_problem(folder)
    with pytest.raises(ExportError, match="exists and is not a zoo export") as raised:
        check_target(folder)
    assert problem in str(raised.value) and "\n" not in str(raised.value)
    assert sorted(os.listdir(folder)) == before


def test_a_version_1_export_is_zoos_by_its_whole_content(tmp_path):
    folder = tmp_path / "e"
    shutil.copytree(SHIPPED_EXPORT, folder)
    manifest = json.loads((folder / "export.json").read_text())
    manifest["format_version"] = 1  # as zoo 0.1 wrote it: no list of files
    del manifest["files"]
    (folder / "export.json").write_text(json.dumps(manifest))
    assert read_manifest(folder)["format_version"] == 1
    assert ownership_problem(folder) is None
    (folder / "notes.txt").write_text("mine")
    assert ownership_problem(folder) == "notes.txt is not a file that zoo exports write"
    (folder / "notes.txt").unlink()
    (folder / "vocab.txt").write_text("<unk>\na\n")
    assert ownership_problem(folder) == "vocab.txt differs from the file zoo wrote"


def test_only_a_dead_process_s_marked_or_whole_folders_are_cleaned_up(tmp_path):
    out, pid = tmp_path / "e", dead_pid()
    marked = tmp_path / f".e.partial-{pid}-0a1b"
    marked.mkdir()
    (marked / PARTIAL_MARKER).write_text(json.dumps({"format": "zoo-export-partial", "pid": pid}))
    (marked / "model.tflite").write_bytes(b"half")
    empty = tmp_path / f".e.partial-{pid}-2c3d"
    empty.mkdir()
    whole = zoo_folder(tmp_path / f".e.previous-{pid}-4e5f")
    users = tmp_path / f".e.partial-{pid}"
    users.mkdir()
    (users / "thesis.tex").write_text("draft")
    wrong_pid = tmp_path / f".e.partial-{pid}-6a7b"
    wrong_pid.mkdir()
    (wrong_pid / PARTIAL_MARKER).write_text(json.dumps({"format": "zoo-export-partial", "pid": 1}))
    alive = new_partial(out)  # this process's, still being written
    remove_stale_partials(out)
    assert not marked.exists() and not empty.exists() and not whole.exists()
    assert (users / "thesis.tex").read_text() == "draft"
    assert wrong_pid.exists() and alive.exists()


def test_an_export_into_the_working_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError, match="holds the current folder"):
        check_target(Path("."))


# ---------------------------------------------------------------- with a real export


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """A copy of ``trained_run`` and its export (SavedModel and TFLite, unmeasured)."""
    from zoo.pipeline import export_run

    _, run = trained_run
    copy = tmp_path_factory.mktemp("ownership") / "run"
    shutil.copytree(run, copy)
    export_run(str(copy), quantizations=("dynamic",), measure=False)
    return copy, copy / "export"


def test_export_json_lists_every_file_of_the_export(exported):
    _, export = exported
    manifest = read_manifest(export)
    assert manifest["format_version"] == 3
    on_disk = {
        path.relative_to(export).as_posix()
        for path in export.rglob("*")
        if path.is_file() and path.name != "export.json"
    }
    assert {record["path"] for record in manifest["files"]} == on_disk
    assert "saved_model/saved_model.pb" in on_disk and "model.tflite" in on_disk
    assert file_records(export) == manifest["files"]
    assert ownership_problem(export) is None


def test_an_export_replaces_only_its_own_folder(exported, tmp_path):
    run, export = exported
    copy = tmp_path / "copy"
    shutil.copytree(export, copy)
    args = ["export", str(run), "--format", "tflite", "--no-measure", "--out", str(copy)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert not (copy / "saved_model").exists() and ownership_problem(copy) is None
    (copy / "thesis.tex").write_text("draft")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "thesis.tex is not listed" in result.stderr
    assert (copy / "thesis.tex").read_text() == "draft"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy"]


def test_files_from_another_export_are_refused_before_they_run(exported, tmp_path):
    from zoo.export.litert import load_export

    _, export = exported
    copy = tmp_path / "copy"
    shutil.copytree(export, copy)
    assert load_export(copy).generate("time", 5, greedy=True).startswith("time")
    shutil.copy(copy / "model-dynamic.tflite", copy / "model.tflite")
    with pytest.raises(ExportError, match=r"model.tflite: sha256 .* from another export"):
        load_export(copy)
    shutil.copy(export / "model.tflite", copy / "model.tflite")
    (copy / "vocab.txt").write_text("<unk>\n" + (export / "vocab.txt").read_text())
    with pytest.raises(ExportError, match=r"vocab.txt: .* from another export"):
        load_export(copy)


def test_a_full_disk_is_named_and_leaves_nothing(exported, tmp_path, monkeypatch):
    run, _ = exported

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("zoo.export.exporter.write_card", full)
    out = tmp_path / "e"
    result = CliRunner().invoke(
        cli, ["export", str(run), "--format", "tflite", "--no-measure", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "disk full" in result.stderr
    assert "memory" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# A real export process each (seconds): in the slow set, with the other real processes.
@pytest.mark.slow
@pytest.mark.parametrize("measure", [False, True], ids=["no-measure", "measure"])
def test_a_successful_export_writes_nothing_on_stderr(exported, tmp_path, measure):
    """LiteRT's native library logs as interpreters and accelerators are destroyed,
    some only after Python has finished: a real process shows what a user sees."""
    run, _ = exported
    command = [sys.executable, "-m", "zoo.cli.main", "export", str(run), "--format", "tflite"]
    command += ["--quantize", "none", "--out", str(tmp_path / "e")]
    command += [] if measure else ["--no-measure"]
    environment = {key: value for key, value in os.environ.items() if key != "ZOO_DEBUG"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
