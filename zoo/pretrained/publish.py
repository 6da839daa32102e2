"""``zoo models add``: a finished run becomes a shipped model.

Copies the run's artifacts (model, vocabularies, recipe, metrics and exports; not
checkpoints/ or logs/) into ``saved_models/NAME/``, writes its model card, and writes
its ``registry.yaml`` entry with each file's sha256 and size and the test metrics.

An export folder (``RUN/export``, with one TFLite file kept) becomes an export-only
model, a phone build: its files as they are (its card is the export's ``card.md``), and
for metrics its TFLite file's quality as the export's ``card.json`` measured it, on the
whole test split.

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
    EXPORT_MANIFEST,
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


def export_metrics(folder: Path, files: list[Path]) -> dict:
    """The registry metrics of an export-only model: the quality of the one TFLite file
    it keeps, as the export's card measured it (``keras_<key>``: the Keras model's, on
    the same data), which must be the whole split. Every file ``files`` keeps must be
    one that ``export.json`` lists, unchanged."""
    from zoo.export.manifest import checked_listed_file, read_manifest

    manifest = read_manifest(folder)
    for path in files:  # every file is one the export wrote, as it wrote it
        if path.as_posix() != EXPORT_MANIFEST:
            checked_listed_file(folder, manifest, path.as_posix())
    listed = {entry["file"] for entry in manifest.get("tflite", [])}
    kept = [path.as_posix() for path in files if path.as_posix() in listed]
    if len(kept) != 1:
        raise CatalogError(
            f"{folder}: an export-only model keeps one TFLite file, this one would keep "
            f"{len(kept)} ({', '.join(kept) or 'none'}); leave the others out with --exclude"
        )
    card_path = folder / "card.json"
    if not card_path.is_file():
        raise CatalogError(
            f"{folder}: no card.json; its metrics are the card's (export without --no-measure)"
        )
    card = documents.read_json(card_path, "export card", CatalogError)
    quality = card.get("quality") if isinstance(card, dict) else None
    measured = quality.get(kept[0]) if isinstance(quality, dict) else None
    if not isinstance(measured, int | float) or not isinstance(quality.get("key"), str):
        raise CatalogError(
            f"{card_path}: no quality of {kept[0]} that the registry can list "
            "(export it again without --no-measure)"
        )
    if quality.get("whole_split") is False:
        raise CatalogError(
            f"{card_path}: quality measured on part of the {quality.get('split')} split "
            f"({quality.get('scope')}); the registry lists whole-split figures: export again"
        )
    key, split = quality["key"], quality.get("split", "test")
    metrics = {key: float(measured)}
    if isinstance(quality.get("keras"), int | float):
        metrics[f"keras_{key}"] = float(quality["keras"])
    for name, target in (
        ("beam_width", "beam_width"),
        ("pairs", f"{split}_sentences"),
        ("tokens", f"{split}_tokens"),
    ):
        if isinstance(quality.get(name), int) and not isinstance(quality.get(name), bool):
            metrics[target] = quality[name]
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


def _refuse_to_replace_what_zoo_did_not_write(name: str, target: Path, models: dict) -> None:
    """``--replace`` removes ``target`` only when it is the registered model's folder and
    holds nothing but the files its entry lists, unchanged: a folder of that name that
    is not a registered model, or a file added or edited in it, is refused, not lost."""
    if not (target.exists() or target.is_symlink()):
        return
    entry = models.get(name)
    if entry is None or target.is_symlink() or not target.is_dir():
        raise CatalogError(
            f"{target}: in the way of --replace and not a registered model's folder "
            f"('{name}' is not in the registry); nothing replaced"
        )
    artifacts = entry.get("artifacts") if isinstance(entry, dict) else None
    listed = {
        relative: artifact
        for relative, artifact in (artifacts if isinstance(artifacts, dict) else {}).items()
        if isinstance(artifact, dict) and artifact.get("uri") == f"{name}/{relative}"
    }
    for path in sorted(target.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(target).as_posix()
        artifact = listed.get(relative)
        if artifact is None or path.is_symlink():
            raise CatalogError(
                f"{path}: not a file of the registered model '{name}'; nothing replaced "
                "(move it out of the folder first)"
            )
        if path.stat().st_size != artifact.get("size") or file_sha256(path) != artifact.get(
            "sha256"
        ):
            raise CatalogError(
                f"{path}: changed since `zoo models add` wrote it (its sha256 is not the "
                "registry's); nothing replaced (move it out of the folder first)"
            )


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
    export_only = (run_dir / EXPORT_MANIFEST).is_file()
    recipe_file = run_dir / "recipe.yaml"
    recipe = validate(read_yaml(recipe_file))
    files = _run_files(run_dir, exclude)
    if export_only:
        metrics = export_metrics(run_dir, files)
    else:
        metrics_path = run_dir / "metrics.json"
        if not metrics_path.is_file():
            raise CatalogError(f"{run_dir}: no metrics.json (the run has not finished)")
        metrics = read_metrics(metrics_path)
    required = required_artifacts(recipe["task"], export_only)
    missing = [path for path in required if Path(path) not in files]
    if missing:
        raise CatalogError(f"{run_dir}: no {missing[0]}; a {recipe['task']} model needs it")
    target = root / name
    # before the long part; checked again under the lock
    if replace:
        _refuse_to_replace_what_zoo_did_not_write(name, target, _registry_models(registry_file))
    else:
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
        if not export_only:  # an export's card.md is listed, with its sha256, in export.json
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
            if replace:
                _refuse_to_replace_what_zoo_did_not_write(name, target, models)
            else:
                _refuse_an_existing_name(name, target, models)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
            models[name] = entry
            _write_registry(registry_file, models)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry
