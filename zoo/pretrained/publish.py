"""``zoo models add``: a finished run becomes a shipped model.

Copies the run's artifacts (model, vocabularies, recipe, metrics and exports; not
checkpoints/ or logs/) into ``saved_models/NAME/``, writes its model card, and writes
its ``registry.yaml`` entry with each file's sha256 and size and the test metrics.

Two ``zoo models add`` at once both land: the model is prepared apart, then the registry
is read, changed and replaced (atomically) under a lock on its folder, so neither
process writes over the other's entry.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from zoo import documents
from zoo.pretrained import locks
from zoo.pretrained.artifacts import file_sha256
from zoo.pretrained.catalog import (
    MODEL_NAME,
    CatalogError,
    parse_entry,
    read_models,
    required_artifacts,
    shipped_location,
)
from zoo.pretrained.model_card import LICENSES, test_metrics, write_model_card
from zoo.training.run_directory import MARKER as RUN_MARKER

# What a run directory holds that a shipped model leaves behind; the run's marker too:
# the registry entry, which lists every file with its hash, is what makes the folder zoo's.
SKIPPED = {"checkpoints", "logs", "pretrain", "run.lock", "translations.tsv", RUN_MARKER}
REGISTRY_HEADER = (
    "# Pretrained models: name → files under saved_models/ (or URIs), each with its sha256\n"
    "# and size, checked on every load. Written by `zoo models add RUN_DIR --name NAME`;\n"
    "# see zoo/pretrained/catalog.py for the schema.\n"
)
REGISTRY_LOCK_SECONDS = 60  # another add holds it for a rename and a write
# metrics.json's values that the model card reads, by kind
NUMBER_METRICS = ("train_seconds", "pretrain_seconds", "wall_seconds")
TEXT_METRICS = ("machine", "recipe_sha256", "bleu_signature")


def _run_files(run_dir: Path, exclude=()) -> list[Path]:
    files = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if relative.parts[0] in SKIPPED or relative.name.startswith("translations-"):
            continue
        if any(fnmatch.fnmatch(relative.as_posix(), pattern) for pattern in exclude):
            continue
        if path.is_symlink():
            raise CatalogError(f"{path}: a link; a shipped model holds regular files only")
        if path.is_file():
            files.append(relative)
    return files


def save_for_inference(source: Path, target: Path) -> None:
    """The model of ``source`` without its optimizer state (the moments and the weight
    average that a training checkpoint carries: three quarters of its size), which is
    all that inference and evaluation read. Loaded in safe mode, saved as a new file."""
    from zoo.training.run_directory import RunDirectory

    model = RunDirectory(source.parent).load_model(source)
    model.optimizer = None
    model.compiled = False
    model.save(target)


def read_metrics(path: Path) -> dict:
    """A run's ``metrics.json``, within zoo.documents' bounds, with the values the model
    card reads of the kind it reads them; one ``CatalogError`` line naming the path
    inside the file if not."""
    label = str(path)
    metrics = documents.read_json(path, "metrics", CatalogError)
    if not isinstance(metrics, dict):
        raise CatalogError(f"{label}: expected a mapping, got {type(metrics).__name__}")
    for key in NUMBER_METRICS:
        if key in metrics:
            documents.field(metrics, key, (int, float), label, CatalogError)
    for key in TEXT_METRICS:
        if key in metrics:
            documents.field(metrics, key, str, label, CatalogError)
    if "chapter_examples" in metrics:
        examples = documents.field(metrics, "chapter_examples", dict, label, CatalogError)
        for source, example in examples.items():
            where = f"{label}: chapter_examples[{source!r}]"
            for key, kind in (("translation", str), ("expected", str), ("exact", bool)):
                documents.field(example, key, kind, where, CatalogError)
    return metrics


def _write_registry(registry_file: Path, models: dict) -> None:
    """Replaces the registry atomically (the caller holds the registry's lock)."""
    body = yaml.safe_dump({"models": models}, sort_keys=False, allow_unicode=True, width=100)
    temporary = registry_file.with_name(registry_file.name + ".tmp")
    temporary.write_text(REGISTRY_HEADER + body, encoding="utf-8")
    os.replace(temporary, registry_file)


def _registry_models(registry_file: Path) -> dict:
    return dict(read_models(registry_file)) if registry_file.is_file() else {}


def _refuse_an_existing_name(name: str, target: Path, models: dict) -> None:
    if name in models or target.exists():
        raise CatalogError(f"pretrained model '{name}' exists ({target}); --replace replaces it")


def add_model(
    run_dir,
    name: str,
    description: str | None = None,
    replace: bool = False,
    registry_file=None,
    root=None,
    exclude=(),
) -> dict:
    """Adds the finished run ``run_dir`` as the shipped model ``name``; returns its entry.
    ``exclude``: glob patterns of run files to leave out (``export/saved_model/*``)."""
    from zoo.recipe import read_yaml, recipe_hash, validate

    default_file, default_root = shipped_location()
    registry_file = Path(registry_file or default_file)
    root = Path(root or default_root)
    run_dir = Path(run_dir)
    if not MODEL_NAME.match(name):
        raise CatalogError(
            f"--name: a model name is lowercase letters, digits, '.', '_' and '-', got {name!r}"
        )
    recipe_file = run_dir / "recipe.yaml"
    recipe = validate(read_yaml(recipe_file))
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise CatalogError(f"{run_dir}: no metrics.json (the run has not finished)")
    metrics = read_metrics(metrics_path)
    files = _run_files(run_dir, exclude)
    missing = [path for path in required_artifacts(recipe["task"]) if Path(path) not in files]
    if missing:
        raise CatalogError(f"{run_dir}: no {missing[0]}; a {recipe['task']} model needs it")
    target = root / name
    if not replace:  # before the long part; checked again under the lock
        _refuse_an_existing_name(name, target, _registry_models(registry_file))

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            if relative == Path("model.keras"):
                save_for_inference(run_dir / relative, staging / relative)
            else:
                shutil.copy2(run_dir / relative, staging / relative)
        write_model_card(staging, name, recipe, metrics, description, run_dir)
        artifacts = {
            path.relative_to(staging).as_posix(): {
                "uri": f"{name}/{path.relative_to(staging).as_posix()}",
                "sha256": file_sha256(path),
                "size": path.stat().st_size,
            }
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        entry = {
            "task": recipe["task"],
            "description": description or str(recipe.get("description") or recipe["name"]),
            # the hash the run's recipe.yaml, metrics.json and export.json name
            "recipe": {"name": recipe["name"], "sha256": recipe_hash(read_yaml(recipe_file))},
            "licenses": LICENSES.get(str(recipe["data"]["source"]), LICENSES["own"]),
            "metrics": test_metrics(metrics),
            "artifacts": artifacts,
        }
        parse_entry(name, entry, str(registry_file), root, "zoo")  # what is written is valid
        registry_file.parent.mkdir(parents=True, exist_ok=True)
        busy = (
            f"{registry_file}: another `zoo models add` has held it for "
            f"{REGISTRY_LOCK_SECONDS} s; try again"
        )
        with locks.exclusive(registry_file.parent, REGISTRY_LOCK_SECONDS, busy):
            models = _registry_models(registry_file)  # as another add may have left it
            if not replace:
                _refuse_an_existing_name(name, target, models)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
            models[name] = entry
            _write_registry(registry_file, models)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry
