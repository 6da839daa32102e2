"""The run directory: one training run's recipe, checkpoints, logs, metrics and exports.

runs/<recipe>/<timestamp>/
    zoo-run.json       the marker: this folder is a zoo run (format, version, run id, the
                       top-level names the run owns)
    recipe.yaml        resolved recipe (after --set), headed by its sha256
    run.lock           held (flock) while a process writes here
    checkpoints/       last.keras + state.json after every finished epoch
    pretrain/          a pretraining stage, when the recipe has one: checkpoints/, logs/,
                       model.keras
    logs/              TensorBoard events and history.csv
    curves.png         loss and metrics per epoch, training and validation (pretraining too)
    vocab.txt          the vocabulary (language models)
    model.keras        the final model
    metrics.json       evaluation
    translations.tsv   a translator's test translations
    metrics-<settings>.json, translations-<settings>.tsv
                       `zoo evaluate`'s results, named after its split and decoding
                       settings, beside the run's own, never over them
    export/            SavedModel (and TFLite) exports

A folder is a run only when zoo wrote it, known by content, never by file names: it holds
a valid ``zoo-run.json``, or (a run of a zoo before the marker) every file in it is one a
run writes, its ``recipe.yaml`` carries the sha256 zoo heads it with, and its model files
are Keras archives; such a run gets its marker the first time zoo writes to it. An
existing folder is used only when it is a run already or empty: a user's own files are
never mixed with a run's. zoo writes a top-level name only when the marker lists it (it
lists all of ``RUN_ENTRIES`` from the start, which the empty folder did not hold) or when
nothing has that name yet, and then lists it first. A start that fails before training
removes exactly what this process created there (``discard``), so the folder is left as
it was.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import re
import shutil
import sys
import time
import uuid
import warnings
import zipfile
from pathlib import Path

import zoo
from zoo import documents
from zoo.errors import ZooError
from zoo.recipe import RecipeError, dump_recipe, read_yaml, recipe_hash, training_hash, validate

DEFAULT_ROOT = Path("runs")

# What a run writes at its top level; ``discard`` removes only these, and only when this
# process created them.
MARKER = "zoo-run.json"
MARKER_FORMAT = "zoo-run"
MARKER_VERSION = 1
CURVES = "curves.png"
RUN_ENTRIES = (
    MARKER,
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
    CURVES,
)

# What runs of zoo before the marker wrote, relative to the run (or to a stage of it,
# ``pretrain/``), for recognising them by content: ``*`` stays within one folder, the
# export folder is an export's own business (``zoo.export`` checks it when replacing it).
LEGACY_FILES = (
    "run.lock",
    "recipe.yaml",
    "vocab.txt",
    "src_vocab.txt",
    "tgt_vocab.txt",
    "model.keras",
    "card.md",
    "metrics.json",
    "metrics-*.json",
    "translations.tsv",
    "translations-*.tsv",
    "predictions.png",
    "predictions-*.png",
    # the pictures of today's runs, so that a run whose marker was lost is still one
    "curves.png",
    "attention-*.png",
    "checkpoints/last.keras",
    "checkpoints/best.keras",
    "checkpoints/state.json",
    "logs/history.csv",
    "logs/steps.csv",
    "logs/train/events.out.tfevents.*",
    "logs/validation/events.out.tfevents.*",
)
LEGACY_FOLDERS = ("checkpoints", "logs", "logs/train", "logs/validation", "export", "pretrain")


class RunError(ZooError):
    """A run directory that cannot be used as asked."""


def write_atomically(path: Path, text: str) -> None:
    """Writes through a temporary file and a rename, so a kill never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_marker(folder: Path) -> dict | None:
    """The run marker of ``folder``, or None when it has none; a marker that is there
    but not zoo's (damaged, another format) is one ``RunError`` line."""
    path = Path(folder) / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    marker = documents.read_json(path, "run marker", RunError, max_bytes=1 << 20)
    label = str(path)
    if documents.field(marker, "format", str, label, RunError) != MARKER_FORMAT:
        raise RunError(f"{path}: not a zoo run marker (format {marker['format']!r})")
    if documents.field(marker, "format_version", int, label, RunError) != MARKER_VERSION:
        raise RunError(
            f"{path}: run marker version {marker['format_version']}; this zoo reads "
            f"version {MARKER_VERSION}"
        )
    if not re.fullmatch(r"[0-9a-f]{32}", documents.field(marker, "run_id", str, label, RunError)):
        raise RunError(f"{path}: run_id: expected 32 hexadecimal digits")
    entries = documents.field(marker, "entries", list, label, RunError)
    if not all(isinstance(name, str) and "/" not in name for name in entries):
        raise RunError(f"{path}: entries: expected top-level file names")
    return marker


def legacy_run_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a run of an earlier zoo (no marker), or None when it is one:
    every file and folder in it is one such a run writes (``LEGACY_FILES``, also under
    ``pretrain/``; ``export/`` as a whole), its ``recipe.yaml`` is headed by the sha256
    of its own content, and each ``.keras`` file is a zip archive."""
    folder = Path(folder)
    header = ""
    if (folder / "recipe.yaml").is_file():
        with open(folder / "recipe.yaml", encoding="utf-8", errors="replace") as file:
            header = file.readline().strip()
    if not header.startswith("# sha256: "):
        return "no recipe.yaml headed by zoo's sha256"
    try:
        if recipe_hash(read_yaml(folder / "recipe.yaml")) != header.removeprefix("# sha256: "):
            return "recipe.yaml differs from the sha256 at its head"
    except RecipeError:
        return "recipe.yaml is not a readable recipe"
    if not ((folder / "checkpoints").is_dir() or (folder / "model.keras").is_file()):
        return "neither checkpoints/ nor model.keras"
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        inner = name.removeprefix("pretrain/")
        if name == "export" or name.startswith("export/"):
            continue
        if path.is_symlink():
            return f"{name} is a symbolic link"
        # every folder on a file's path is checked too, so a pattern's * cannot reach
        # into a folder a run does not write
        if path.is_dir():
            known = inner in LEGACY_FOLDERS
        else:
            known = any(fnmatch.fnmatchcase(inner, pattern) for pattern in LEGACY_FILES)
        if not known:
            return f"it holds {name!r}, which a run does not write"
        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            return f"{name} is not a Keras archive"
    return None


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
            previous = sorted(path for path in root.glob("*") if cls(path).is_run())
            if not previous:
                raise RunError(f"--resume: no earlier run of '{recipe['name']}' under {root}/")
            return cls(previous[-1])
        return cls(root / time.strftime("%Y%m%d-%H%M%S"))

    def is_run(self) -> bool:
        """Whether zoo wrote this folder: a valid marker, or a run of an earlier zoo
        recognised by its whole content (a damaged marker is one ``RunError`` line)."""
        if not self.path.is_dir():
            return False
        return read_marker(self.path) is not None or legacy_run_problem(self.path) is None

    def require_run(self) -> None:
        """Refuses a folder that zoo did not write, in one line that says why."""
        if not self.path.is_dir():
            raise RunError(f"{self.path}: not a run directory (no such folder)")
        if read_marker(self.path) is None:
            problem = legacy_run_problem(self.path)
            if problem is not None:
                raise RunError(f"{self.path}: not a zoo run ({MARKER} missing, and {problem})")

    def check_usable(self) -> None:
        """Refuses a path that is a file, or a folder that holds something other than a run."""
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a directory; choose another --out")
        if self.path.is_dir() and not self.is_run():
            entries = self.path.iterdir()
            foreign = sorted(entry.name for entry in entries if entry.name != "run.lock")
            if foreign:
                raise RunError(
                    f"{self.path}: not empty and not a zoo run (it holds {foreign[0]!r}"
                    f"{' and more' if len(foreign) > 1 else ''}); choose a new or empty --out"
                )

    def mark(self) -> None:
        """Writes the marker of a new run, or of a run of an earlier zoo (once, in place,
        with a note); a run that has one keeps it."""
        marker = read_marker(self.path)
        if marker is not None:
            return
        if legacy_run_problem(self.path) is None:
            print(
                f"zoo: note: {self.path}: a run of an earlier zoo, recognised by its "
                f"content; marked as zoo's ({MARKER})",
                file=sys.stderr,
            )
        existing = {entry.name for entry in self.path.iterdir()}
        marker = {
            "format": MARKER_FORMAT,
            "format_version": MARKER_VERSION,
            "run_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "zoo_version": zoo.__version__,
            "entries": sorted(set(RUN_ENTRIES) | existing),
        }
        write_atomically(self.path / MARKER, json.dumps(marker, indent=2) + "\n")

    def own(self, name: str) -> Path:
        """The top-level path ``name`` of this run, for zoo to write: listed in the marker
        first when it is new; refused when something of that name is there that the
        marker does not list (the user's)."""
        path = self.path / name
        marker = read_marker(self.path)
        if marker is None:
            self.require_run()
            self.mark()
            marker = read_marker(self.path)
        if name in marker["entries"]:
            return path
        if path.exists() or path.is_symlink():
            raise RunError(
                f"{path}: not written by zoo (the run's {MARKER} does not list it); "
                "move it away and retry"
            )
        marker["entries"] = sorted({*marker["entries"], name})
        write_atomically(self.path / MARKER, json.dumps(marker, indent=2) + "\n")
        return path

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
            self.mark()
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
        """Whether an epoch has finished, or one in progress was checkpointed (of training
        or of pretraining): something to resume."""
        from zoo.training.callbacks import partial_exists

        stages = (self.checkpoints, self.path / "pretrain" / "checkpoints")
        return self.has_finished_epoch() or any(partial_exists(folder) for folder in stages)

    def has_finished_epoch(self) -> bool:
        """Whether an epoch has finished (of training or of pretraining)."""
        stages = (self.checkpoints, self.path / "pretrain" / "checkpoints")
        return any((folder / "state.json").is_file() for folder in stages)

    def result_path(self, name: str) -> Path:
        """Where a result file goes: ``name`` itself for the run's own results,
        ``metrics-test-beam1-alpha0.json`` for ``metrics.json`` under ``results_label``."""
        if self.results_label:
            stem, _, extension = name.partition(".")
            name = f"{stem}-{self.results_label}.{extension}"
        return self.own(name)

    def write_metrics(self, metrics: dict) -> None:
        text = json.dumps(metrics, indent=2, ensure_ascii=False) + "\n"
        write_atomically(self.result_path("metrics.json"), text)

    def read_metrics(self) -> dict:
        if not self.metrics_path.is_file():
            raise RunError(f"{self.path}: no metrics.json (has the run finished?)")
        metrics = documents.read_json(self.metrics_path, "metrics", RunError)
        if not isinstance(metrics, dict):
            raise RunError(f"{self.metrics_path}: expected a mapping of metrics")
        return metrics

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
            # safe_mode: a .keras file may not run code (lambdas) or name unregistered classes.
            # Keras warns about a damaged file's parts before failing on it (or about an
            # optimizer it cannot restore, which inference never uses): the outcome is
            # what counts, one line or the model, so its warnings stay off the terminal
            # (ZOO_DEBUG=1 shows them).
            with warnings.catch_warnings():
                if os.environ.get("ZOO_DEBUG") != "1":
                    warnings.simplefilter("ignore")
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
    to a scratch folder of its own in ``$TMPDIR``, removed when the worker ends.

    A worker killed with ``kill -9`` cannot remove its scratch, so each scratch holds a
    marker (``SCRATCH_MARKER``: the worker's pid and the start time of that process),
    and the next worker or launcher removes the scratch folders whose process is gone
    (``remove_stale_scratch``). A folder is recognised by that marker, never by its name
    alone: one without a readable marker, of another user, or whose process still runs
    (or whose pid a process started at the same time holds) is left alone."""

    SCRATCH_PREFIX = "zoo-worker"
    SCRATCH_MARKER = "zoo-worker-scratch.json"
    SCRATCH_FORMAT = "zoo-worker-scratch"

    def __init__(self, scratch: Path, shared: Path):
        super().__init__(scratch)
        self.shared = Path(shared)

    checkpoints = property(lambda self: self.shared / "checkpoints")

    @classmethod
    def for_worker(cls, shared: Path, worker: int) -> FollowerRun:
        """A new scratch folder for ``worker``, marked as this process's."""
        import tempfile

        cls.remove_stale_scratch()
        scratch = Path(tempfile.mkdtemp(prefix=f"{cls.SCRATCH_PREFIX}{worker}-"))
        pid = os.getpid()
        owner = {"format": cls.SCRATCH_FORMAT, "pid": pid, "started": cls._started(pid)}
        write_atomically(scratch / cls.SCRATCH_MARKER, json.dumps(owner) + "\n")
        return cls(scratch, shared)

    @classmethod
    def remove_stale_scratch(cls, folder: Path | None = None) -> list[Path]:
        """Removes the scratch folders in ``folder`` (default: ``$TMPDIR``) whose marker
        names a worker process that is gone; returns them."""
        import tempfile

        folder = Path(folder or tempfile.gettempdir())
        stale = [path for path in folder.glob(f"{cls.SCRATCH_PREFIX}*-*") if cls._is_stale(path)]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return stale

    @classmethod
    def _is_stale(cls, path: Path) -> bool:
        try:
            if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                return False
            owner = documents.read_json(path / cls.SCRATCH_MARKER, "scratch marker", max_bytes=4096)
        except (OSError, documents.DocumentError):
            return False
        if not isinstance(owner, dict) or owner.get("format") != cls.SCRATCH_FORMAT:
            return False
        pid, started = owner.get("pid"), owner.get("started")
        if type(pid) is not int or pid <= 0 or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # a process of another user: alive, and told apart below
            pass
        # the pid is in use: by the worker itself, or by a later process given its number
        now = cls._started(pid)
        return started is not None and now is not None and now != started

    @staticmethod
    def _started(pid: int) -> int | None:
        """When process ``pid`` started (clock ticks since boot, from /proc; None
        where there is no /proc): a pid and this tell one process from a later one that
        was given the same number."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
            return int(stat.rpartition(")")[2].split()[19])  # field 22 of proc(5)
        except (OSError, IndexError, ValueError):
            return None

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
