"""The files of a pretrained model: checked (sha256 and size), downloaded, unpacked.

A download goes to a temporary file beside its target and is renamed only once it is
complete and its checksum matches, so an interrupted one leaves nothing. An archive is
unpacked into a temporary folder, member by member, refusing absolute paths, ``..``
and links, then renamed into place. ``ZOO_OFFLINE=1`` refuses every download before
any connection is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from zoo.pretrained.catalog import Artifact, CatalogError, ModelEntry

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60
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


def offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


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


def _manifest(folder: Path) -> dict:
    path = folder / UNPACKED_MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _folder_problems(entry: ModelEntry, artifact: Artifact) -> list[str]:
    where = f"{entry.name}: {artifact.path}"
    record = _manifest(entry.folder).get(artifact.path)
    if not record or not entry.local_path(artifact).is_dir():
        return [f"{where}: missing ({entry.local_path(artifact)})"]
    if record["archive_sha256"] != artifact.sha256:
        return [
            f"{where}: unpacked from an archive of sha256 {record['archive_sha256']}, "
            f"the registry says {artifact.sha256}"
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


# ----------------------------------------------------------------------------- download


def _open(uri: str):
    """A binary stream of ``uri``: file://, http(s):// or anything tf.io.gfile reads."""
    if uri.startswith("file://"):
        return open(urllib.request.url2pathname(uri[len("file://") :]), "rb")  # noqa: SIM115
    if uri.startswith(("http://", "https://")):
        request = urllib.request.Request(uri, headers={"User-Agent": "zoo"})
        return urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310
    import tensorflow as tf

    return tf.io.gfile.GFile(uri, "rb")


def download(uri: str, target: Path, sha256: str, size: int, what: str) -> None:
    """Copies ``uri`` to ``target`` through a temporary file that is renamed only when
    complete and matching ``sha256`` and ``size``; on any failure nothing is left."""
    if offline():
        raise CatalogError(
            f"{what}: not in the cache ({target}) and ZOO_OFFLINE=1 forbids fetching {uri}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as out, _open(uri) as stream:
            while chunk := stream.read(CHUNK):
                received += len(chunk)
                if received > size:
                    raise CatalogError(f"{what}: {uri} is larger than the registry's {size} bytes")
                digest.update(chunk)
                out.write(chunk)
        if received != size:
            raise CatalogError(
                f"{what}: {uri} gave {received} bytes, the registry says {size} "
                "(interrupted download; nothing kept)"
            )
        if digest.hexdigest() != sha256:
            raise CatalogError(
                f"{what}: {uri} has sha256 {digest.hexdigest()}, the registry says {sha256}; "
                "nothing kept"
            )
        os.replace(temporary, target)
    except CatalogError:
        raise
    except Exception as error:  # network, HTTP and file errors: one line, nothing kept
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CatalogError(f"{what}: cannot fetch {uri} ({reason[:200]}); nothing kept") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _safe_member_name(name: str, what: str) -> str:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise CatalogError(f"{what}: archive member {name!r} leaves its folder; refused")
    return "/".join(part for part in parts if part != ".")


def unpack(archive: Path, target: Path, what: str) -> dict[str, list]:
    """Unpacks ``archive`` into the folder ``target`` (replacing it); returns each
    file's [sha256, size]. Absolute paths, ``..`` and links are refused."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.unpack-"))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                for info in bundle.infolist():
                    name = _safe_member_name(info.filename, what)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise CatalogError(
                            f"{what}: archive member {info.filename!r} is a link; refused"
                        )
                    if info.is_dir() or not name:
                        continue
                    destination = staging / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with bundle.open(info) as source, open(destination, "wb") as out:
                        shutil.copyfileobj(source, out, CHUNK)
        else:
            with tarfile.open(archive, "r:gz") as bundle:
                for member in bundle.getmembers():
                    name = _safe_member_name(member.name, what)
                    if member.issym() or member.islnk():
                        raise CatalogError(
                            f"{what}: archive member {member.name!r} is a link; refused"
                        )
                    if member.isdir() or not name:
                        continue
                    if not member.isfile():
                        raise CatalogError(f"{what}: archive member {member.name!r} is not a file")
                    destination = staging / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with bundle.extractfile(member) as source, open(destination, "wb") as out:
                        shutil.copyfileobj(source, out, CHUNK)
        files = {
            path.relative_to(staging).as_posix(): [file_sha256(path), path.stat().st_size]
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        return files
    except (zipfile.BadZipFile, tarfile.TarError) as error:
        raise CatalogError(f"{what}: {archive.name} is not a readable archive ({error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(entry: ModelEntry, artifact: Artifact) -> None:
    """Brings one remote artifact into the entry's cache folder, verified."""
    what = f"{entry.name}: {artifact.path}"
    path = entry.local_path(artifact)
    check_inside(path, entry.folder.parent, what)
    if not artifact.is_folder:
        download(artifact.uri, path, artifact.sha256, artifact.size, what)
        return
    suffix = ".zip" if artifact.uri.lower().endswith(".zip") else ".tar.gz"
    target = path.parent / path.name  # path ends with "/": the folder itself
    archive = target.parent / f".{target.name}{suffix}"
    download(artifact.uri, archive, artifact.sha256, artifact.size, what)
    try:
        files = unpack(archive, target, what)
    finally:
        archive.unlink(missing_ok=True)
    manifest = _manifest(entry.folder)
    manifest[artifact.path] = {"archive_sha256": artifact.sha256, "files": files}
    temporary = entry.folder / (UNPACKED_MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(temporary, entry.folder / UNPACKED_MANIFEST)
