"""A pretrained model's remote files brought into the cache, bounded in time and size.

One process at a time pulls a model: it holds the lock ``$ZOO_HOME/models/.NAME.lock``;
another one waits for it (at most as long as the first may take) and then finds the
files there. Everything a pull writes goes first into its folder ``.NAME.pull/``,
marked as zoo's by the file ``zoo-pull.json`` inside, and is renamed into the model
folder only once complete and verified. The pull removes that folder when it ends; a
pull killed before (``kill -9``, a power cut) leaves it, and the next pull of the model
removes it, knowing it by its marker: a folder of that name without one is not zoo's,
and the pull refuses to touch it.

A download has to keep pace: a connection or a read that waits ``ZOO_DOWNLOAD_TIMEOUT``
seconds (default 60) fails, and so does one that falls behind ``ZOO_DOWNLOAD_MIN_RATE``
bytes a second (default 20,000) once that many seconds have passed, so a file of the
registry's size takes at most about ``timeout + size / rate`` seconds however slowly a
server sends it. A ``file://`` URI must name a regular file (a FIFO would block, a
device never end). An archive is unpacked member by member, refusing absolute paths,
``..``, links, members that collide (a file and a folder of one name, a name twice),
more than ``MAX_ARCHIVE_MEMBERS`` members, and members that would add up past the
registry's ``unpacked_size``, each before it is written. ``ZOO_OFFLINE=1`` refuses every
download before any connection is opened.

What the network or time causes (a timeout, a slow or dropped transfer, a pull that
waited too long for another) is a ``CatalogFailure``, exit code 1; what the server sent
that the registry does not describe, and hostile archives, a ``CatalogError``, exit code 2.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from zoo import documents
from zoo.errors import DISK_FULL
from zoo.pretrained import locks
from zoo.pretrained.artifacts import (
    CHUNK,
    UNPACKED_MANIFEST,
    check_inside,
    file_sha256,
    unpacked_records,
)
from zoo.pretrained.catalog import (
    ARCHIVE_EXPANSION,
    Artifact,
    CatalogError,
    CatalogFailure,
    ModelEntry,
    cache_root,
)

TIMEOUT_ENV, MIN_RATE_ENV = "ZOO_DOWNLOAD_TIMEOUT", "ZOO_DOWNLOAD_MIN_RATE"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MIN_RATE = 20_000.0  # bytes a second: 160 kbit/s, a poor mobile link
MAX_ARCHIVE_MEMBERS = 10_000  # a SavedModel is a dozen files
NAME_MAX = 255  # bytes in one component of a path, on every common file system
PULL_MARKER = "zoo-pull.json"
PULL_FORMAT = "zoo-pull"
# An archive's member that cannot be read: damaged data, an encrypted or unknown-method
# zip member (RuntimeError, NotImplementedError).
UNREADABLE_ARCHIVE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
)


def offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _positive_setting(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise CatalogError(f"{name}: expected a positive number, got {text!r:.40}")
    return value


def download_limits() -> tuple[float, float]:
    """(the seconds a connection or a read may wait, the minimum rate in bytes a second)."""
    return (
        _positive_setting(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS),
        _positive_setting(MIN_RATE_ENV, DEFAULT_MIN_RATE),
    )


def _open(uri: str, timeout: float, what: str):
    """A binary stream of ``uri``: file:// (a regular file), http(s):// (reads that wait
    at most ``timeout`` seconds) or anything tf.io.gfile reads."""
    if uri.startswith("file://"):
        path = urllib.request.url2pathname(uri[len("file://") :])
        # without O_NONBLOCK, opening a FIFO waits for a writer that may never come
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise CatalogError(f"{what}: {uri} is not a regular file; refused")
        return os.fdopen(descriptor, "rb")
    if uri.startswith(("http://", "https://")):
        request = urllib.request.Request(uri, headers={"User-Agent": "zoo"})
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    import tensorflow as tf

    return tf.io.gfile.GFile(uri, "rb")


def _timed_out(error: Exception) -> bool:
    return isinstance(error, TimeoutError) or (
        isinstance(error, urllib.error.URLError) and isinstance(error.reason, TimeoutError)
    )


def download(uri: str, target: Path, sha256: str, size: int, what: str, staging: Path) -> None:
    """Copies ``uri`` to ``target`` through a file in ``staging`` that is renamed only when
    complete and matching ``sha256`` and ``size``; on any failure nothing is left."""
    if offline():
        raise CatalogError(
            f"{what}: not in the cache ({target}) and ZOO_OFFLINE=1 forbids fetching {uri}"
        )
    timeout, min_rate = download_limits()
    handle, temporary = tempfile.mkstemp(dir=staging, prefix=f"{target.name}.", suffix=".part")
    try:
        digest, received, start = hashlib.sha256(), 0, time.monotonic()
        with os.fdopen(handle, "wb") as out, _open(uri, timeout, what) as stream:
            # read1 returns what has arrived, so a trickle is timed byte by byte
            read = getattr(stream, "read1", stream.read)
            while chunk := read(CHUNK):
                received += len(chunk)
                if received > size:
                    raise CatalogError(f"{what}: {uri} is larger than the registry's {size} bytes")
                elapsed = time.monotonic() - start
                if elapsed > timeout + received / min_rate:
                    raise CatalogFailure(
                        f"{what}: {uri} sent {received:,} of {size:,} bytes in {elapsed:.1f} s, "
                        f"slower than {MIN_RATE_ENV}={min_rate:g} bytes/s; nothing kept"
                    )
                digest.update(chunk)
                out.write(chunk)
        if received != size:
            raise CatalogFailure(
                f"{what}: {uri} gave {received} bytes, the registry says {size} "
                "(interrupted download; nothing kept)"
            )
        if digest.hexdigest() != sha256:
            raise CatalogError(
                f"{what}: {uri} has sha256 {digest.hexdigest()}, the registry says {sha256}; "
                "nothing kept"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
    except CatalogError:
        raise
    except Exception as error:  # network, HTTP and file errors: one line, nothing kept
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            raise  # this machine's, not the download's: zoo.errors says so
        if _timed_out(error):
            raise CatalogFailure(
                f"{what}: {uri} sent nothing for {timeout:g} s ({TIMEOUT_ENV}); nothing kept"
            ) from None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CatalogFailure(f"{what}: cannot fetch {uri} ({reason[:200]}); nothing kept") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# ----------------------------------------------------------------------------- archives


def _safe_member_name(name: str, what: str) -> str:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise CatalogError(f"{what}: archive member {name!r} leaves its folder; refused")
    if any(len(part.encode("utf-8", "replace")) > NAME_MAX for part in parts):
        raise CatalogError(f"{what}: archive member {name!r:.120} is not a file name; refused")
    return "/".join(part for part in parts if part != ".")


def _members(archive: Path, bundle) -> Iterator[tuple[str, str, int, object]]:
    """(name, kind: file | folder | link | other, size, opener) of each member, read one
    header at a time. The size is the one a member's stream gives at most: zipfile and
    tarfile cut a member's data at its header's size."""
    if archive.name.endswith(".zip"):
        for info in bundle.infolist():
            link = (info.external_attr >> 16) & 0o170000 == 0o120000
            kind = "link" if link else "folder" if info.is_dir() else "file"
            yield info.filename, kind, info.file_size, lambda info=info: bundle.open(info)
        return
    for member in bundle:
        if member.issym() or member.islnk():
            kind = "link"
        else:
            kind = "folder" if member.isdir() else "file" if member.isfile() else "other"
        yield member.name, kind, member.size, lambda member=member: bundle.extractfile(member)


def _claim(name: str, kind: str, files: set, folders: set, what: str) -> bool:
    """Records the member ``name`` (a file or a folder) among those seen; refuses one that
    clashes with them (a file and a folder of one name, a file twice). True for a file."""
    parts = name.split("/")
    parents = {"/".join(parts[:end]) for end in range(1, len(parts))}
    clash = min(parents & files, default=None)
    if (kind == "file" and name in folders) or (kind == "folder" and name in files):
        clash = name
    if clash is not None:
        raise CatalogError(
            f"{what}: archive members collide: {clash!r} is both a file and a folder; refused"
        )
    if kind == "file" and name in files:
        raise CatalogError(f"{what}: archive member {name!r} appears twice; refused")
    folders.update(parents)
    (files if kind == "file" else folders).add(name)
    return kind == "file"


def _open_archive(archive: Path):
    if archive.name.endswith(".zip"):
        return zipfile.ZipFile(archive)
    return tarfile.open(archive, "r:gz")


def unpack(archive: Path, target: Path, artifact: Artifact, what: str, staging: Path) -> dict:
    """Unpacks ``archive`` (the artifact's) into the folder ``target``, replacing it;
    returns each file's [sha256, size]. Refused before anything lands in ``target``:
    absolute paths, ``..``, links, colliding names, too many members, and more bytes
    than the artifact may unpack to."""
    limit = artifact.max_unpacked_size
    unpacked = Path(tempfile.mkdtemp(dir=staging, prefix="unpack-"))
    files, folders, total = set(), set(), 0
    try:
        with _open_archive(archive) as bundle:
            for count, (raw_name, kind, size, open_member) in enumerate(
                _members(archive, bundle), 1
            ):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise CatalogError(
                        f"{what}: the archive has more than {MAX_ARCHIVE_MEMBERS:,} members; "
                        "refused"
                    )
                name = _safe_member_name(raw_name, what)
                if kind == "link":
                    raise CatalogError(f"{what}: archive member {raw_name!r} is a link; refused")
                if kind == "other":
                    raise CatalogError(f"{what}: archive member {raw_name!r} is not a file")
                if not name or not _claim(name, kind, files, folders, what):
                    continue
                total += size
                if total > limit:
                    declared = (
                        "the registry's unpacked_size"
                        if artifact.unpacked_size is not None
                        else f"{ARCHIVE_EXPANSION} times its size (the registry gives no "
                        "unpacked_size)"
                    )
                    raise CatalogError(
                        f"{what}: the archive unpacks to more than {limit:,} bytes, "
                        f"{declared}; refused"
                    )
                destination = unpacked / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with open_member() as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
        if artifact.unpacked_size is not None and total != artifact.unpacked_size:
            raise CatalogError(
                f"{what}: the archive unpacks to {total:,} bytes, the registry's "
                f"unpacked_size is {artifact.unpacked_size:,}; refused"
            )
        record = {
            name: [file_sha256(unpacked / name), (unpacked / name).stat().st_size]
            for name in sorted(files)
        }
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(unpacked, target)
        return record
    except UNREADABLE_ARCHIVE as error:
        raise CatalogError(f"{what}: not a readable archive ({error})") from None
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def fetch(entry: ModelEntry, artifact: Artifact, staging: Path) -> None:
    """Brings one remote artifact into the entry's cache folder, verified, through the
    pull's ``staging`` folder."""
    what = f"{entry.name}: {artifact.path}"
    path = entry.local_path(artifact)
    check_inside(path, entry.folder.parent, what)
    if not artifact.is_folder:
        download(artifact.uri, path, artifact.sha256, artifact.size, what, staging)
        return
    suffix = ".zip" if artifact.uri.lower().endswith(".zip") else ".tar.gz"
    archive = staging / f"archive{suffix}"
    download(artifact.uri, archive, artifact.sha256, artifact.size, what, staging)
    try:
        files = unpack(archive, path.parent / path.name, artifact, what, staging)
    finally:
        archive.unlink(missing_ok=True)
    try:
        records = unpacked_records(entry.folder)
    except CatalogError:  # damaged: written anew, the other folders count as missing
        records = {}
    records[artifact.path] = {"archive_sha256": artifact.sha256, "files": files}
    temporary = staging / UNPACKED_MANIFEST
    temporary.write_text(json.dumps(records, indent=1), encoding="utf-8")
    os.replace(temporary, entry.folder / UNPACKED_MANIFEST)


# ----------------------------------------------------------------------------- one pull at a time


def lock_file(name: str) -> Path:
    return cache_root() / f".{name}.lock"


def staging_folder(name: str) -> Path:
    return cache_root() / f".{name}.pull"


def _is_pull_folder(folder: Path, name: str) -> bool:
    """Whether ``folder`` is one a pull of ``name`` made: its marker says so."""
    marker = folder / PULL_MARKER
    if folder.is_symlink() or not marker.is_file():
        return False
    try:
        document = documents.read_json(marker, "pull marker", CatalogError, max_bytes=4096)
    except CatalogError:
        return False
    return (
        isinstance(document, dict)
        and document.get("format") == PULL_FORMAT
        and (document.get("model") == name)
    )


def _remove_interrupted_pull(folder: Path, name: str) -> None:
    if not (folder.exists() or folder.is_symlink()):
        return
    if _is_pull_folder(folder, name):
        shutil.rmtree(folder)
    elif folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()  # a pull killed before it wrote its marker
    else:
        raise CatalogError(
            f"{folder}: in the way of `zoo models pull {name}` and not zoo's (no "
            f"{PULL_MARKER} in it); move it away"
        )


@contextmanager
def pulling(entry: ModelEntry) -> Iterator[Path]:
    """Holds the model's pull lock (waiting for another pull at most as long as that one
    may take) and yields a fresh staging folder, removed at the end."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CatalogError(f"{root}: cannot create the cache ({error.strerror})") from None
    timeout, min_rate = download_limits()
    sizes = [artifact.size for artifact in entry.artifacts.values()]
    wait = timeout * (1 + len(sizes)) + sum(sizes) / min_rate
    busy = (
        f"{entry.name}: another zoo process has been pulling it for {wait:.0f} s "
        f"({lock_file(entry.name)} is locked); try again later"
    )
    with locks.exclusive(lock_file(entry.name), wait, busy):
        staging = staging_folder(entry.name)
        _remove_interrupted_pull(staging, entry.name)
        staging.mkdir()
        marker = {"format": PULL_FORMAT, "model": entry.name, "pid": os.getpid()}
        (staging / PULL_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def interrupted_pull(entry: ModelEntry) -> list[str]:
    """For ``zoo models verify``: the staging folder of a pull that was killed, or one
    not of zoo's in its place (none while a pull is running)."""
    folder = staging_folder(entry.name)
    if not (folder.exists() or folder.is_symlink()) or locks.is_held(lock_file(entry.name)):
        return []
    if _is_pull_folder(folder, entry.name):
        return [
            f"{entry.name}: an interrupted pull left {folder}; the next "
            f"`zoo models pull {entry.name}` removes it"
        ]
    return [
        f"{entry.name}: {folder} is not a folder of zoo's (no {PULL_MARKER}); "
        f"`zoo models pull {entry.name}` refuses to run until it is moved away"
    ]
