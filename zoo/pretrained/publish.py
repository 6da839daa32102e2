"""``zoo models add``: a finished run becomes a shipped model.

Copies the run's artifacts (model, vocabularies, recipe, metrics and exports; not
checkpoints/ or logs/) into ``saved_models/NAME/``, writes its model card, and writes
its ``registry.yaml`` entry with each file's sha256 and size and the test metrics.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from zoo.pretrained.artifacts import file_sha256
from zoo.pretrained.catalog import (
    MODEL_NAME,
    REQUIRED_ARTIFACTS,
    CatalogError,
    parse_entry,
    shipped_location,
)
from zoo.pretrained.model_card import LICENSES, test_metrics, write_model_card

# What a run directory holds that a shipped model leaves behind.
SKIPPED = {"checkpoints", "logs", "pretrain", "run.lock", "translations.tsv"}
REGISTRY_HEADER = (
    "# Pretrained models: name → files under saved_models/ (or URIs), each with its sha256\n"
    "# and size, checked on every load. Written by `zoo models add RUN_DIR --name NAME`;\n"
    "# see zoo/pretrained/catalog.py for the schema.\n"
)


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


def _write_registry(registry_file: Path, models: dict) -> None:
    body = yaml.safe_dump({"models": models}, sort_keys=False, allow_unicode=True, width=100)
    temporary = registry_file.with_name(registry_file.name + ".tmp")
    temporary.write_text(REGISTRY_HEADER + body, encoding="utf-8")
    os.replace(temporary, registry_file)


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
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    files = _run_files(run_dir, exclude)
    missing = [path for path in REQUIRED_ARTIFACTS[recipe["task"]] if Path(path) not in files]
    if missing:
        raise CatalogError(f"{run_dir}: no {missing[0]}; a {recipe['task']} model needs it")
    document = (
        yaml.safe_load(registry_file.read_text(encoding="utf-8"))
        if registry_file.is_file()
        else None
    )
    models = dict((document or {}).get("models") or {})
    target = root / name
    if (name in models or target.exists()) and not replace:
        raise CatalogError(f"pretrained model '{name}' exists ({target}); --replace replaces it")

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            if relative == Path("model.keras"):
                save_for_inference(run_dir / relative, staging / relative)
            else:
                shutil.copy2(run_dir / relative, staging / relative)
        write_model_card(staging, name, recipe, metrics, description)
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
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    models[name] = entry
    _write_registry(registry_file, models)
    return entry
