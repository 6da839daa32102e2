"""The bad-input suite's machinery (issues 14 and 24): a ``Case`` is a command line with
the files it needs and the one stderr line it must give; ``check_case`` runs it in a
folder of its own (also the working directory, so a default ``runs/`` would land there)
holding a copy of one tiny trained run (the ``trained_run`` fixture of conftest.py), and
snapshots the whole folder before and after: nothing written, nothing lost.

Cases live in the ``test_bad_inputs*.py`` modules, one per area, each with a ``CASES``
list; ``test_bad_inputs.py`` counts them all.
"""

import fcntl
import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from click.testing import CliRunner

from zoo.cli.main import cli


@dataclass
class Case:
    """A command line (``{tmp}``, ``{run}``, ``{recipe}``, ``{corpus}`` filled in), the
    files it needs in its folder, what to do to the run first, and what it must say."""

    id: str
    args: list[str]
    says: str
    code: int = 2
    files: dict = field(default_factory=dict)
    damage: object = None  # damage(run_folder) before the command
    stdin: str | None = None
    env: dict = field(default_factory=dict)


def recipe_text(**changes) -> str:
    recipe = {
        "name": "bad",
        "task": "language_model",
        "data": {"source": "{corpus}", "num_steps": 8, "batch_size": 4},
        "model": {"layers": [{"name": "gru", "units": 8}]},
        "train": {"epochs": 1},
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = recipe
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return yaml.safe_dump(recipe)


def alias_bomb(levels=9, width=9) -> str:
    lines = ["a0: &a0 [lol]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def write(name, text):
    def damage(run):
        path = run / name
        if text is None:
            path.unlink()
        else:
            path.write_bytes(text.encode() if isinstance(text, str) else text)

    return damage


def zip_of_junk(name):
    def damage(run):
        with zipfile.ZipFile(run / name, "w") as archive:
            archive.writestr("config.json", "{not json")

    return damage


def shorter_vocab(run):
    lines = (run / "vocab.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (run / "vocab.txt").write_text("".join(lines[:-3]), encoding="utf-8")


def held_lock(run):
    handle = open(run / "run.lock", "a+")  # noqa: SIM115 (held during the command)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    HELD.append(handle)


HELD = []
RUN = ["run", "recipe"]
GEN = ["generate", "{run}", "--prefix", "time"]
TRAIN_TINY = ["train", "{recipe}", "--seed", "3"]
OUT = ["--out", "{tmp}/out"]
TSV = ["run", "recipe", "seq2seq-gru", "--set", "data.source={tmp}/pairs.tsv", *OUT]
RESUME = [*TRAIN_TINY, "--out", "{run}", "--resume"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` → its sha256 (``/`` for a folder)."""
    return {
        str(path.relative_to(folder)): (
            "/" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        for path in sorted(folder.rglob("*"))
    }


def check_case(case, trained_run, small_corpus, tmp_path, monkeypatch):
    """Runs ``case`` and checks its exit code, its one line, and that nothing changed."""
    recipe, run = trained_run
    work = tmp_path / "work"
    work.mkdir()
    names = {"tmp": str(work), "run": str(work / "run"), "recipe": str(recipe)}
    names["corpus"] = str(small_corpus)

    def fill(text):
        if isinstance(text, str):
            for name, value in names.items():
                text = text.replace(f"{{{name}}}", value)
        return text

    if any("{run}" in arg for arg in case.args) or case.damage is not None:
        shutil.copytree(run, work / "run")
    for name, content in case.files.items():
        path = work / name
        if content is None:
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(fill(content), encoding="utf-8")
        else:
            path.write_bytes(content)
    if case.damage is not None:
        case.damage(work / "run")
    for key, value in case.env.items():
        monkeypatch.setenv(key, fill(value))
    monkeypatch.chdir(work)
    before = snapshot(work)

    try:
        result = CliRunner().invoke(cli, [fill(arg) for arg in case.args], input=case.stdin)
    finally:
        while HELD:
            HELD.pop().close()

    assert result.exit_code == case.code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zoo: error: ") and fill(case.says) in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(work) == before  # nothing written, nothing lost
    assert not (tmp_path.parent / "elsewhere").exists()
