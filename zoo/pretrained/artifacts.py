"""The local copy of a pretrained model's files, checked: sha256 and size of each file,
the files of each unpacked archive, and the files no artifact accounts for (strays).

What puts the files there (downloads, archives) is downloads.py.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from zoo import documents
from zoo.pretrained.catalog import Artifact, CatalogError, ModelEntry

CHUNK = 1 << 20
UNPACKED_MANIFEST = ".zoo-unpacked.json"  # per model folder: the files of each archive
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered for this process by (path, size, mtime)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def check_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` with links resolved, refused unless it lies inside ``root``."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise CatalogError(f"{what}: {path} leaves {root}; refused")
    return resolved


def problems(entry: ModelEntry, artifact: Artifact) -> list[str]:
    """What is wrong with one artifact's local copy: one line each, none when it is good."""
    path = entry.local_path(artifact)
    where = f"{entry.name}: {artifact.path}"
    check_inside(path, entry.folder.parent, where)
    if artifact.is_folder:
        return _folder_problems(entry, artifact)
    if not path.is_file():
        return [f"{where}: missing ({path})"]
    size = path.stat().st_size
    if size != artifact.size:
        return [f"{where}: size {size} bytes, the registry says {artifact.size} ({path})"]
    sha256 = file_sha256(path)
    if sha256 != artifact.sha256:
        return [f"{where}: sha256 {sha256}, the registry says {artifact.sha256} ({path})"]
    return []


def unpacked_records(folder: Path) -> dict:
    """The model folder's record of its unpacked archives: folder artifact path →
    ``{archive_sha256, files: {name: [sha256, size]}}`` (empty when there is none); a
    damaged record is one ``CatalogError`` line naming the path inside it."""
    path = Path(folder) / UNPACKED_MANIFEST
    if not path.is_file():
        return {}
    label = str(path)
    records = documents.read_json(path, "record of unpacked archives", CatalogError)
    if not isinstance(records, dict):
        raise CatalogError(f"{label}: expected a mapping, got {type(records).__name__}")
    for artifact_path, record in records.items():
        documents.field(record, "archive_sha256", str, f"{label}: {artifact_path}", CatalogError)
        files = documents.field(record, "files", dict, f"{label}: {artifact_path}", CatalogError)
        for name, sha256_and_size in files.items():
            if not (
                isinstance(sha256_and_size, list)
                and len(sha256_and_size) == 2
                and isinstance(sha256_and_size[0], str)
                and type(sha256_and_size[1]) is int
            ):
                raise CatalogError(
                    f"{label}: {artifact_path}: files: {name}: expected [sha256, size]"
                )
    return records


def _folder_problems(entry: ModelEntry, artifact: Artifact) -> list[str]:
    where = f"{entry.name}: {artifact.path}"
    try:
        record = unpacked_records(entry.folder).get(artifact.path)
    except CatalogError as damaged:  # the next pull unpacks the archive again
        return [str(damaged)]
    if not record or not entry.local_path(artifact).is_dir():
        return [f"{where}: missing ({entry.local_path(artifact)})"]
    if record["archive_sha256"] != artifact.sha256:
        return [
            f"{where}: unpacked from an archive of sha256 {record['archive_sha256']}, "
            f"the registry says {artifact.sha256}"
        ]
    unpacked_size = sum(size for _, size in record["files"].values())
    if artifact.unpacked_size is not None and unpacked_size != artifact.unpacked_size:
        return [
            f"{where}: {unpacked_size} bytes unpacked, the registry's unpacked_size is "
            f"{artifact.unpacked_size}"
        ]
    found = []
    for name, (sha256, size) in record["files"].items():
        path = entry.local_path(artifact) / name
        if not path.is_file() or path.stat().st_size != size or file_sha256(path) != sha256:
            found.append(f"{where}{name}: differs from the archive it was unpacked from ({path})")
    return found


def verify(entry: ModelEntry) -> list[str]:
    """Every problem of every artifact of ``entry``'s local folder, one line each."""
    return [line for artifact in entry.artifacts.values() for line in problems(entry, artifact)]


def strays(entry: ModelEntry) -> list[str]:
    """The files and links in ``entry``'s folder that no artifact accounts for (the
    partial downloads of an older zoo, files put there by hand), one line each. zoo
    never uses them and never removes them: they may be someone's."""
    folder = entry.folder
    if not folder.is_dir():
        return []
    expected = {artifact.path for artifact in entry.artifacts.values()}
    if entry.remote:
        expected.add(UNPACKED_MANIFEST)
    try:
        records = unpacked_records(folder)
    except CatalogError:  # reported by verify, as a problem of each folder artifact
        records = {}
    unpacked = {
        artifact_path + name
        for artifact_path, record in records.items()
        for name in record["files"]
    }
    folders = tuple(artifact.path for artifact in entry.artifacts.values() if artifact.is_folder)
    found = []
    for directory, subfolders, files in os.walk(folder):
        links = [name for name in subfolders if os.path.islink(os.path.join(directory, name))]
        for name in sorted(files + links):
            relative = Path(directory, name).relative_to(folder).as_posix()
            owner = next((path for path in folders if relative.startswith(path)), None)
            if owner is None:
                accounted = relative in expected
            else:  # a folder without its record: verify reports the folder as missing
                accounted = owner not in records or relative in unpacked
            if not accounted:
                found.append(
                    f"{entry.name}: {relative}: not in the registry ({folder / relative}); "
                    "zoo neither uses nor removes it"
                )
    return found
