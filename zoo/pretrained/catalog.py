"""The pretrained-model catalog: ``registry.yaml`` and the entries plugins and users add.

Not to be confused with ``zoo.registry`` (names of layers, recipes and datasets): this
catalog names trained models and the files that make each one. An entry::

    models:
      lm-lstm-timemachine:
        task: language_model
        description: char-level LSTM language model of The Time Machine
        recipe: {name: lm-lstm, sha256: <recipe_hash of recipe.yaml>}
        licenses: {data: public domain (Project Gutenberg #35), model: Apache-2.0}
        metrics: {perplexity: 3.36}
        artifacts:                      # path in the model folder → where the file is
          model.keras: {uri: lm-lstm-timemachine/model.keras, sha256: <hex>, size: 123}
          vocab.txt: {uri: ..., sha256: ..., size: ...}

An export-only model (a phone build: ``zoo models add RUN/export --name NAME``) ships an
export folder in place of the trained model: ``export.json`` where ``model.keras`` would
be, its TFLite file(s), vocabularies and cards; ``zoo translate`` / ``generate`` run it on
LiteRT, and its metrics are the exported file's own, from the export's card.

An artifact's ``uri`` is a path relative to the catalog's root (``saved_models/`` for
the shipped catalog, the file's folder for a user's), used in place, or a URI
(``file://``, ``https://``, ``http://``, or anything ``tf.io.gfile`` reads, such as
``gs://``) pulled into ``$ZOO_HOME/models/<name>/``. A URI ending in ``.zip`` or
``.tar.gz`` whose path ends with ``/`` is an archive unpacked into that folder; its
``unpacked_size`` (optional) is the total size of its files, and unpacking stops past it
(past ``ARCHIVE_EXPANSION`` times the archive's size when it is not given). A catalog
file is read within ``zoo.documents``' bounds (size, YAML aliases, nesting); every
problem is one ``CatalogError`` line naming the source, the model and the field.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zoo import documents, registry
from zoo.errors import Failure, ZooError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SHIPPED_REGISTRY = PACKAGE_DIR / "registry.yaml"
SHIPPED_ROOT = PACKAGE_DIR / "saved_models"
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


EXPORT_MANIFEST = "export.json"  # zoo.export.manifest.MANIFEST, without importing it


def required_artifacts(task: str, export_only: bool = False) -> tuple[str, ...]:
    """The files a pretrained model of ``task`` ships: its model, recipe and the
    task's own artifacts (vocabularies); an export-only model, ``export.json`` in place
    of the model."""
    model = EXPORT_MANIFEST if export_only else "model.keras"
    return (model, "recipe.yaml", *registry.tasks.get(task).artifacts)


MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# An archive without a declared unpacked_size may unpack to this many times its own size:
# model files compress little (float weights about 1.1 times, vocabularies 3-4 times),
# a zip bomb compresses a thousand times.
ARCHIVE_EXPANSION = 20


class CatalogError(ZooError):
    """A catalog entry that cannot be used, or a model that fails its checks. One line."""


class CatalogFailure(CatalogError, Failure):
    """A model's files that could not be fetched or locked in time: the network or
    another process, not the catalog (exit code 1). One line."""


def zoo_home() -> Path:
    """``$ZOO_HOME`` (default ``~/.cache/zoo``): pulled models and derived files."""
    return Path(os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()


def cache_root() -> Path:
    return zoo_home() / "models"


def shipped_location() -> tuple[Path, Path]:
    """The shipped catalog file and its ``saved_models/`` root (``ZOO_SHIPPED_REGISTRY``
    and ``ZOO_SAVED_MODELS`` replace them, for tests and for making models elsewhere)."""
    return (
        Path(os.environ.get("ZOO_SHIPPED_REGISTRY") or SHIPPED_REGISTRY),
        Path(os.environ.get("ZOO_SAVED_MODELS") or SHIPPED_ROOT),
    )


def is_remote(uri: str) -> bool:
    return bool(URI_SCHEME.match(uri))


def is_archive(uri: str) -> bool:
    return uri.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class Artifact:
    """One file of a model: ``path`` inside the model folder (a folder, ending in ``/``,
    for an unpacked archive), where it comes from, and its checksum and size in bytes
    (of the archive, for a folder; ``unpacked_size``: of its files once unpacked, if
    the registry says)."""

    path: str
    uri: str
    sha256: str
    size: int
    unpacked_size: int | None = None

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    @property
    def max_unpacked_size(self) -> int:
        """What the archive of a folder artifact may unpack to, in bytes."""
        if self.unpacked_size is not None:
            return self.unpacked_size
        return ARCHIVE_EXPANSION * self.size

    def row(self) -> dict:
        """The artifact as the registry writes it."""
        written = {"uri": self.uri, "sha256": self.sha256, "size": self.size}
        if self.unpacked_size is not None:
            written["unpacked_size"] = self.unpacked_size
        return written


@dataclass(frozen=True)
class ModelEntry:
    """A pretrained model of the catalog, with where its entry came from."""

    name: str
    task: str
    description: str
    recipe: dict
    licenses: dict
    metrics: dict
    artifacts: dict[str, Artifact]
    provider: str
    source: str  # the catalog file that holds the entry
    root: Path  # what relative URIs are relative to
    extra: dict = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return any(is_remote(artifact.uri) for artifact in self.artifacts.values())

    @property
    def export_only(self) -> bool:
        """An export folder (TFLite files run by LiteRT) in place of a trained model."""
        return "model.keras" not in self.artifacts and EXPORT_MANIFEST in self.artifacts

    @property
    def folder(self) -> Path:
        """The model's local folder: under the root for a local entry, in the cache for
        a remote one."""
        if self.remote:
            return cache_root() / self.name
        return self.root / self.name

    def local_path(self, artifact: Artifact) -> Path:
        return self.folder / artifact.path

    def summary(self) -> dict:
        """The JSON-serialisable row of ``zoo models list --json`` / ``info``."""
        return {
            "name": self.name,
            "task": self.task,
            "kind": "export" if self.export_only else "model",
            "description": self.description,
            "provider": self.provider,
            "recipe": self.recipe,
            "licenses": self.licenses,
            "metrics": self.metrics,
            "location": "remote" if self.remote else "local",
            "folder": str(self.folder),
            "size": sum(artifact.size for artifact in self.artifacts.values()),
            "artifacts": {path: artifact.row() for path, artifact in self.artifacts.items()},
        }


# ----------------------------------------------------------------------------- schema


# Not zoo.documents.field: a catalog's keys hold dots (``model.keras``, ``lm.v2``), which
# a dotted path cannot name.
def _require(where: str, mapping: dict, key: str, kind: type, optional=False):
    if key not in mapping:
        if optional:
            return kind()
        raise CatalogError(f"{where}.{key}: missing")
    value = mapping[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        names = {str: "a string", dict: "a mapping", int: "an integer"}
        raise CatalogError(f"{where}.{key}: expected {names[kind]}, got {value!r:.60}")
    return value


def _check_artifact_path(where: str, path: str) -> str:
    parts = PurePosixPath(path.rstrip("/")).parts
    if (
        not path
        or "\\" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or not parts
    ):
        raise CatalogError(f"{where}: not a relative path inside the model folder: {path!r}")
    return path


def _check_artifact(where: str, path: str, spec) -> Artifact:
    _check_artifact_path(where, path)
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: expected a mapping with uri, sha256 and size")
    unknown = sorted(str(key) for key in set(spec) - {"uri", "sha256", "size", "unpacked_size"})
    if unknown:
        raise CatalogError(f"{where}.{unknown[0]}: unknown field")
    uri = _require(where, spec, "uri", str)
    sha256 = _require(where, spec, "sha256", str).lower()
    size = _require(where, spec, "size", int)
    if not SHA256.match(sha256):
        raise CatalogError(f"{where}.sha256: expected 64 hexadecimal digits, got {sha256!r:.80}")
    if size < 0:
        raise CatalogError(f"{where}.size: expected a size in bytes >= 0, got {size}")
    unpacked_size = None
    if "unpacked_size" in spec:
        if not path.endswith("/"):
            raise CatalogError(
                f"{where}.unpacked_size: only a folder artifact (a path ending in /) has one"
            )
        unpacked_size = _require(where, spec, "unpacked_size", int)
        if unpacked_size < 0:
            raise CatalogError(
                f"{where}.unpacked_size: expected a size in bytes >= 0, got {unpacked_size}"
            )
    if path.endswith("/") and not (is_remote(uri) and is_archive(uri)):
        raise CatalogError(f"{where}.uri: a folder artifact must be a remote .zip or .tar.gz")
    if not is_remote(uri):
        _check_artifact_path(f"{where}.uri", uri)
    return Artifact(path, uri, sha256, size, unpacked_size)


def parse_entry(name, spec, source: str, root: Path, provider: str) -> ModelEntry:
    """One checked entry of ``models:``."""
    where = f"{source}: models.{name}"
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise CatalogError(
            f"{where}: a model name is lowercase letters, digits, '.', '_' and '-', got {name!r}"
        )
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: expected a mapping")
    known = {"task", "description", "recipe", "licenses", "metrics", "artifacts"}
    unknown = sorted(str(key) for key in set(spec) - known)
    if unknown:
        raise CatalogError(
            f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(known))})"
        )
    task = _require(where, spec, "task", str)
    if task not in registry.tasks:
        known = ", ".join(registry.tasks.names())
        raise CatalogError(f"{where}.task: expected one of {known}, got {task!r}")
    recipe = _require(where, spec, "recipe", dict)
    for key in ("name", "sha256"):
        _require(f"{where}.recipe", recipe, key, str)
    if not SHA256.match(recipe["sha256"]):
        raise CatalogError(f"{where}.recipe.sha256: expected 64 hexadecimal digits")
    licenses = _require(where, spec, "licenses", dict)
    for key in ("data", "model"):
        _require(f"{where}.licenses", licenses, key, str)
    metrics = _require(where, spec, "metrics", dict, optional=True)
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CatalogError(f"{where}.metrics.{key}: expected a number, got {value!r:.60}")
    raw_artifacts = _require(where, spec, "artifacts", dict)
    artifacts = {
        str(path): _check_artifact(f"{where}.artifacts.{path}", str(path), artifact)
        for path, artifact in raw_artifacts.items()
    }
    export_only = "model.keras" not in artifacts and EXPORT_MANIFEST in artifacts
    missing = [path for path in required_artifacts(task, export_only) if path not in artifacts]
    if missing:
        raise CatalogError(f"{where}.artifacts.{missing[0]}: missing (a {task} needs it)")
    remote = {is_remote(artifact.uri) for artifact in artifacts.values()}
    if len(remote) > 1:
        raise CatalogError(
            f"{where}.artifacts: either every uri is a relative path or every one is a URI"
        )
    if remote == {False}:
        for artifact in artifacts.values():
            if artifact.uri != f"{name}/{artifact.path}":
                raise CatalogError(
                    f"{where}.artifacts.{artifact.path}.uri: a relative uri is "
                    f"'{name}/{artifact.path}' (the model's folder under the root), "
                    f"got {artifact.uri!r}"
                )
    return ModelEntry(
        name=name,
        task=task,
        description=_require(where, spec, "description", str, optional=True),
        recipe=dict(recipe),
        licenses=dict(licenses),
        metrics=dict(metrics),
        artifacts=artifacts,
        provider=provider,
        source=source,
        root=Path(root),
    )


def read_models(path: Path) -> dict:
    """The ``models:`` mapping of a catalog file, unchecked beyond its shape, read within
    ``zoo.documents``' bounds (a MiB, 100,000 values once aliases are expanded, 64 levels)."""
    path = Path(path)
    document = documents.read_yaml(path, "registry", CatalogError)
    if document is None:
        document = {}
    if not isinstance(document, dict) or set(document) - {"models"}:
        raise CatalogError(f"{path}: expected a mapping with one key, models")
    models = document.get("models") or {}
    if not isinstance(models, dict):
        raise CatalogError(f"{path}: models: expected a mapping of name → model")
    return models


def read_catalog_file(path: Path, root: Path | None = None, provider: str = "zoo") -> list:
    """The entries of one catalog file; relative URIs are under ``root`` (default: the
    file's folder)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    return [
        parse_entry(name, spec, str(path), root, provider)
        for name, spec in read_models(path).items()
    ]


# ----------------------------------------------------------------------------- sources

_plugin_catalogs: list[tuple[Path, Path | None, str]] = []


def register_catalog(path, root=None) -> None:
    """Called by a plugin (entry point group ``zoo.plugins``) at import: adds the
    models of the catalog file ``path``, whose relative URIs are under ``root``
    (default: the file's folder)."""
    _plugin_catalogs.append((Path(path), Path(root) if root else None, registry.current_provider()))


def _load_plugins() -> None:
    # Plugins are imported only when there are some: no plugin, no TensorFlow import.
    if registry.plugins_installed():
        registry.load_plugins()


def user_registry_file() -> Path | None:
    """``ZOO_REGISTRY`` (the CLI's ``--registry PATH`` sets it)."""
    value = os.environ.get("ZOO_REGISTRY")
    return Path(value).expanduser() if value else None


class Catalog:
    """Every pretrained model: shipped, from plugins and from the user's file. A name
    given twice is refused."""

    def __init__(self, entries: list[ModelEntry]):
        self.entries: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.name in self.entries:
                first = self.entries[entry.name]
                raise CatalogError(
                    f"pretrained model '{entry.name}' is already defined by {first.provider} "
                    f"({first.source}); {entry.provider} ({entry.source}) cannot define it again"
                )
            self.entries[entry.name] = entry

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def get(self, name: str) -> ModelEntry:
        if name not in self.entries:
            import difflib

            close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self.entries)) or "none"
            raise CatalogError(f"unknown pretrained model '{name}'{hint} (known: {known})")
        return self.entries[name]

    def names(self) -> list[str]:
        return sorted(self.entries)


def load_catalog() -> Catalog:
    """The shipped catalog, then plugins' catalogs, then the user's (``ZOO_REGISTRY``)."""
    registry_file, root = shipped_location()
    entries = read_catalog_file(registry_file, root) if registry_file.is_file() else []
    _load_plugins()
    for path, plugin_root, provider in _plugin_catalogs:
        entries += read_catalog_file(path, plugin_root, provider)
    user_file = user_registry_file()
    if user_file is not None:
        entries += read_catalog_file(user_file, provider=f"user ({user_file})")
    return Catalog(entries)


def model_table() -> list[dict]:
    """Rows of ``zoo models list``."""
    catalog = load_catalog()
    return [catalog.get(name).summary() for name in catalog.names()]
