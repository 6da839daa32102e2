"""The run directory: one training run's recipe, checkpoints, logs, metrics and exports.

runs/<recipe>/<timestamp>/
    recipe.yaml        resolved recipe (after --set), headed by its sha256
    run.lock           held (flock) while a process writes here
    checkpoints/       last.keras + state.json after every finished epoch
    pretrain/          a pretraining stage, when the recipe has one: checkpoints/, logs/,
                       model.keras
    logs/              TensorBoard events and history.csv
    vocab.txt          the vocabulary (language models)
    model.keras        the final model
    metrics.json       evaluation
    translations.tsv   a translator's test translations
    metrics-<settings>.json, translations-<settings>.tsv
                       `zoo evaluate`'s results, named after its split and decoding
                       settings, beside the run's own, never over them
    export/            SavedModel (and TFLite) exports

An existing folder is used only when it is a run already or empty: a user's own files are
never mixed with a run's. A start that fails before training removes exactly what this
process created there (``discard``), so the folder is left as it was.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

from zoo.errors import ZooError
from zoo.recipe import dump_recipe, read_yaml, training_hash, validate

DEFAULT_ROOT = Path("runs")

# What a run writes at its top level; ``discard`` removes only these, and only when this
# process created them.
RUN_ENTRIES = (
    "recipe.yaml",
    "run.lock",
    "checkpoints",
    "pretrain",
    "logs",
    "vocab.txt",
    "src_vocab.txt",
    "tgt_vocab.txt",
    "model.keras",
    "metrics.json",
    "export",
)


class RunError(ZooError):
    """A run directory that cannot be used as asked."""


def write_atomically(path: Path, text: str) -> None:
    """Writes through a temporary file and a rename, so a kill never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class RunDirectory:
    """A run directory, locked for the lifetime of this object's process."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_file = None
        self._created: list[Path] = []  # what this process made here, for ``discard``
        # Set by `zoo evaluate`: results then go to files named after their settings.
        self.results_label = ""

    checkpoints = property(lambda self: self.path / "checkpoints")
    logs = property(lambda self: self.path / "logs")
    recipe_path = property(lambda self: self.path / "recipe.yaml")
    metrics_path = property(lambda self: self.path / "metrics.json")
    model_path = property(lambda self: self.path / "model.keras")
    export = property(lambda self: self.path / "export")

    @classmethod
    def for_recipe(cls, recipe: dict, out: str | None, resume: bool) -> RunDirectory:
        """``out``, or ``runs/<recipe>/<timestamp>/`` (with ``resume``: the latest one)."""
        if out:
            return cls(Path(out))
        root = DEFAULT_ROOT / recipe["name"]
        if resume:
            previous = sorted(path for path in root.glob("*") if (path / "recipe.yaml").is_file())
            if not previous:
                raise RunError(f"--resume: no earlier run of '{recipe['name']}' under {root}/")
            return cls(previous[-1])
        return cls(root / time.strftime("%Y%m%d-%H%M%S"))

    def check_usable(self) -> None:
        """Refuses a path that is a file, or a folder that holds something other than a run."""
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a directory; choose another --out")
        if self.path.is_dir() and not self.recipe_path.is_file():
            entries = self.path.iterdir()
            foreign = sorted(entry.name for entry in entries if entry.name != "run.lock")
            if foreign:
                raise RunError(
                    f"{self.path}: not empty and not a zoo run (it holds {foreign[0]!r}"
                    f"{' and more' if len(foreign) > 1 else ''}); choose a new or empty --out"
                )

    def lock(self) -> None:
        """Takes the directory; a second process writing here is refused."""
        folders = (*reversed(self.path.parents), self.path)  # outermost first
        self._created += [folder for folder in folders if not folder.exists()]
        entries = (self.path / name for name in RUN_ENTRIES)
        self._created += [entry for entry in entries if not entry.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path / "run.lock", "a+")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            self._created = []  # all of it is the other process's
            raise RunError(
                f"{self.path}: another zoo process is writing to this run directory"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"{os.getpid()}\n")
        self._lock_file.flush()

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def start(self, recipe: dict, resume: bool) -> None:
        """Locks the directory and records the recipe; on resume, checks it is the same.
        A refusal leaves the directory as it was."""
        self.check_usable()
        self.lock()
        try:
            if self.recipe_path.is_file():
                self._check_resumable(recipe, resume)
            else:
                write_atomically(self.recipe_path, dump_recipe(recipe))
            for folder in (self.checkpoints, self.logs, self.export):
                folder.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.discard()
            self.unlock()
            raise

    def _check_resumable(self, recipe: dict, resume: bool) -> None:
        if not resume:
            raise RunError(
                f"{self.path} already holds a run; continue it with --resume "
                "or choose another --out"
            )
        # validated again, so settings added to zoo since then take their defaults
        stored_hash = training_hash(validate(read_yaml(self.recipe_path)))
        if stored_hash != training_hash(recipe):
            raise RunError(
                f"{self.path}: the recipe differs from the one this run started with "
                f"(sha256 {stored_hash[:12]}); resume with the same recipe and --set values"
            )

    def stage(self, name: str) -> RunDirectory:
        """A stage of this run (pretraining) in the subfolder ``name``, with its own
        checkpoints and logs, under this run's lock."""
        stage = RunDirectory(self.path / name)
        for folder in (stage.checkpoints, stage.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return stage

    def discard(self) -> None:
        """Removes what this process created here and nothing else (a start that failed or
        was interrupted before training): the folder is left as it was before."""
        for path in reversed(self._created):  # innermost first
            if path.parent == self.path:  # one of the run's own files or folders
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            elif path.is_dir() and not any(path.iterdir()):  # a folder made for the run
                path.rmdir()
        self._created = []

    def has_checkpoint(self) -> bool:
        """Whether an epoch has finished (of training or of pretraining): something to resume."""
        stages = (self.checkpoints, self.path / "pretrain" / "checkpoints")
        return any((folder / "state.json").is_file() for folder in stages)

    def result_path(self, name: str) -> Path:
        """Where a result file goes: ``name`` itself for the run's own results,
        ``metrics-test-beam1-alpha0.json`` for ``metrics.json`` under ``results_label``."""
        if not self.results_label:
            return self.path / name
        stem, _, extension = name.partition(".")
        return self.path / f"{stem}-{self.results_label}.{extension}"

    def write_metrics(self, metrics: dict) -> None:
        text = json.dumps(metrics, indent=2, ensure_ascii=False) + "\n"
        write_atomically(self.result_path("metrics.json"), text)

    def read_metrics(self) -> dict:
        if not self.metrics_path.is_file():
            raise RunError(f"{self.path}: no metrics.json (has the run finished?)")
        return json.loads(self.metrics_path.read_text(encoding="utf-8"))

    def load_model(self, path: Path):
        """A saved model of this run; a damaged file is a one-line ``RunError``."""
        import keras

        import zoo.metrics  # noqa: F401  (registers the metrics compiled with the model)
        import zoo.models  # noqa: F401  (registers the task models for deserialisation)
        import zoo.training.optimizers  # noqa: F401  (and the optimizers)

        if not Path(path).is_file():
            raise RunError(f"{path}: no such model file")
        if not zipfile.is_zipfile(path):
            raise RunError(f"{path}: corrupt model file (not a .keras zip archive)")
        try:
            # safe_mode: a .keras file may not run code (lambdas) or name unregistered classes
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as error:  # zip, HDF5 and config errors all mean "unusable file"
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            if "arbitrary code execution" in reason:
                raise RunError(
                    f"{path}: refused by safe_mode: the file holds Python code (a lambda), "
                    "which loading would run"
                ) from None
            raise RunError(f"{path}: corrupt or unreadable model file ({reason[:200]})") from None

    def read_recipe(self) -> dict:
        if not self.recipe_path.is_file():
            raise RunError(f"{self.path}: not a run directory (no recipe.yaml)")
        return read_yaml(self.recipe_path)


class FollowerRun(RunDirectory):
    """A non-chief worker's view of a distributed run: it reads the chief's checkpoints
    (``shared``, the run directory the chief writes) to resume, and writes nothing
    there; what it must write as it trains (its own copy of the vocabulary, logs) goes
    to a scratch folder of its own."""

    def __init__(self, scratch: Path, shared: Path):
        super().__init__(scratch)
        self.shared = Path(shared)

    checkpoints = property(lambda self: self.shared / "checkpoints")

    @classmethod
    def for_worker(cls, shared: Path, worker: int) -> FollowerRun:
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix=f"zoo-worker{worker}-"))
        return cls(scratch, shared)

    def start(self, recipe: dict, resume: bool) -> None:
        for folder in (self.path / "checkpoints", self.logs, self.export):
            folder.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str) -> FollowerRun:
        stage = FollowerRun(self.path / name, self.shared / name)
        stage.logs.mkdir(parents=True, exist_ok=True)
        return stage

    def has_checkpoint(self) -> bool:
        stages = (self.checkpoints, self.shared / "pretrain" / "checkpoints")
        return any((folder / "state.json").is_file() for folder in stages)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
