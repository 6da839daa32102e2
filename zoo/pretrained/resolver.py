"""Name or path → a verified local model folder shaped like a run directory.

``zoo generate``, ``translate``, ``evaluate`` and ``zoo.load`` take a run directory or
a pretrained model's name; both end here. A catalog model is checked file by file
(sha256 and size) on every load, pulled first when its files are remote and not yet
in the cache (one process at a time: downloads.py). Files a command derives from a
catalog model (a translator's ``translations.tsv``) go to ``$ZOO_HOME/work/<name>/``,
never into ``saved_models/`` or the installed package.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from zoo.pretrained import artifacts, downloads
from zoo.pretrained.catalog import CatalogError, ModelEntry, load_catalog, zoo_home


# The small files a command reads from its run directory (the model is read in place).
def work_files() -> tuple[str, ...]:
    """The small files of a catalog model copied to its work folder: its recipe,
    metrics and every task's artifacts (vocabularies)."""
    from zoo import registry

    artifacts = {name for task in registry.tasks.entries() for name in task.obj.artifacts}
    return ("recipe.yaml", "metrics.json", *sorted(artifacts))


@dataclass(frozen=True)
class ResolvedModel:
    """``path``: the verified folder; ``work_path``: where commands may write (the
    run directory itself for a run, a folder of ``$ZOO_HOME/work`` for a catalog
    model); ``entry``: the catalog entry, if any."""

    path: Path
    work_path: Path
    entry: ModelEntry | None = None


def _looks_like_path(name_or_path: str) -> bool:
    return "/" in name_or_path or "\\" in name_or_path or Path(name_or_path).exists()


def pull_model(entry: ModelEntry) -> list[str]:
    """Fetches the artifacts of ``entry`` that are missing or differ; returns the paths
    fetched. A local entry's files are only checked."""
    found = artifacts.verify(entry)
    if not found:
        return []
    if not entry.remote:
        raise CatalogError(found[0])
    fetched = []
    with downloads.pulling(entry) as staging:
        # checked again under the lock: a pull that held it may have fetched them
        for artifact in entry.artifacts.values():
            if artifacts.problems(entry, artifact):
                downloads.fetch(entry, artifact, staging)
                fetched.append(artifact.path)
    return fetched


def verified_folder(entry: ModelEntry) -> Path:
    """The entry's local folder after every artifact passed its checks (remote ones
    are pulled first). The first problem is raised as one line."""
    pull_model(entry)
    found = artifacts.verify(entry)
    if found:
        raise CatalogError(found[0])
    return entry.folder


def _work_folder(entry: ModelEntry) -> Path:
    work = zoo_home() / "work" / entry.name
    work.mkdir(parents=True, exist_ok=True)
    for name in work_files():
        source, copy = entry.folder / name, work / name
        if source.is_file():
            shutil.copyfile(source, copy)
        elif copy.exists():
            copy.unlink()
    return work


def resolve_model(name_or_path: str) -> ResolvedModel:
    """A run directory (or a model folder) by path, or a catalog model by name."""
    name_or_path = str(name_or_path)
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        try:
            entries = load_catalog().entries.values()
        except CatalogError:  # a run directory needs no catalog, even a broken one
            entries = []
        for entry in entries:  # a catalog model's folder, or its export folder, by path
            if not (path.exists() and entry.folder.exists()):
                continue
            folder, target = entry.folder.resolve(), path.resolve()
            if target == folder:
                return ResolvedModel(verified_folder(entry), _work_folder(entry), entry)
            if folder in target.parents:
                verified_folder(entry)
                return ResolvedModel(path, path, entry)
        return ResolvedModel(path, path)
    catalog = load_catalog()
    if name_or_path not in catalog:
        try:
            catalog.get(name_or_path)
        except CatalogError as error:
            raise CatalogError(f"{name_or_path}: no such run directory, and {error}") from None
    entry = catalog.get(name_or_path)
    return ResolvedModel(verified_folder(entry), _work_folder(entry), entry)


def export_folder(name_or_path: str) -> Path | None:
    """The verified folder to run on LiteRT when ``name_or_path`` is an export folder by
    path or an export-only catalog model by name; None for a run or a trained model."""
    from zoo.export.manifest import is_export

    name_or_path = str(name_or_path)
    if _looks_like_path(name_or_path):
        return resolve_model(name_or_path).path if is_export(name_or_path) else None
    try:
        entry = load_catalog().get(name_or_path)
    except CatalogError:
        return None  # resolve_model says why, for the trained-model path
    return verified_folder(entry) if entry.export_only else None


def verify_models(name: str | None = None) -> list[str]:
    """``zoo models verify``: every problem of one model or of all, one line each: its
    files, the files in its folder that no artifact accounts for, what a killed pull left."""
    catalog = load_catalog()
    entries = [catalog.get(name)] if name else [catalog.get(n) for n in catalog.names()]
    return [
        line
        for entry in entries
        for line in (
            artifacts.verify(entry) + artifacts.strays(entry) + downloads.interrupted_pull(entry)
        )
    ]


def pull(name: str) -> list[str]:
    """``zoo models pull``: the named model's remote artifacts into the cache, verified."""
    entry = load_catalog().get(name)
    fetched = pull_model(entry)
    found = artifacts.verify(entry)
    if found:
        raise CatalogError(found[0])
    return fetched
