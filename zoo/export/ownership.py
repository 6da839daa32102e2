"""Which folders ``zoo export`` may replace or clean up: only those whose content shows
that zoo wrote them, never those that merely hold a file named ``export.json``.

An export folder is zoo's when its ``export.json`` is valid and

- (format version 2) every file in the folder is one that ``export.json`` lists, with
  the size and sha256 listed (a listed file may be missing: a shipped model keeps only
  some, and a missing file holds nothing to lose);
- (format version 1, exports of earlier releases, which list no files) every file has
  a name such an export writes, the TFLite files the sha256 listed and the
  vocabularies the token counts listed.

Anything else (an unlisted or changed file, a link, no or an invalid ``export.json``)
is the user's: refused in one line, untouched. An empty folder holds nothing and may
be used.

An export is written into ``.NAME.partial-PID-RANDOM`` beside its target, marked as
zoo's from its first moment (``.zoo-partial.json`` names the process), then renamed;
an earlier export goes to ``.NAME.previous-PID-RANDOM`` until the new one is in place.
What a killed export leaves is removed by the next one only when its process is gone
and the folder is still zoo's by this mark or by its content.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from zoo.export.manifest import (
    MANIFEST,
    ExportError,
    listed_files,
    read_manifest,
    sha256_of,
)

PARTIAL_MARKER = ".zoo-partial.json"
PARTIAL_FORMAT = "zoo-export-partial"
# The files a version 1 export wrote besides its TFLite files and vocabularies.
V1_NAMES = ("card.json", "card.md", "recipe.yaml")
V1_SAVED_MODEL = re.compile(
    r"saved_model/(saved_model\.pb|fingerprint\.pb"
    r"|variables/variables\.index|variables/variables\.data-\d{5}-of-\d{5})"
)


def ownership_problem(folder: Path) -> str | None:
    """Why ``folder`` is not wholly a zoo export, in a few words; None when it is."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        return f"no {MANIFEST}"
    try:
        manifest = read_manifest(folder)
    except ExportError as error:
        return str(error).removeprefix(f"{folder}/")
    files, unreadable = {}, []
    for root, folders, names in os.walk(folder, onerror=unreadable.append):
        for name in sorted(folders + names):
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                return f"{relative} is a link, which zoo never writes"
            if stat.S_ISREG(mode):
                files[relative] = path
            elif not stat.S_ISDIR(mode):
                return f"{relative} is not a regular file"
    if unreadable:  # what zoo cannot see, it cannot tell is its own
        return f"{Path(unreadable[0].filename).relative_to(folder)} cannot be read"
    del files[MANIFEST]
    if manifest["format_version"] == 1:
        return _version_1_problem(manifest, files)
    listed = listed_files(manifest)
    for relative, path in files.items():
        record = listed.get(relative)
        if record is None:
            return f"{relative} is not listed in its {MANIFEST}"
        if path.stat().st_size != record["size"] or sha256_of(path) != record["sha256"]:
            return f"{relative} differs from the file zoo wrote"
    return None


def _version_1_problem(manifest: dict, files: dict) -> str | None:
    tflite = {entry["file"]: entry for entry in manifest.get("tflite", [])}
    # a vocabulary is an entry with a file and its token count ("vocab", "source_vocab")
    vocabularies = {
        entry["file"]: entry["size"]
        for entry in manifest.values()
        if isinstance(entry, dict) and isinstance(entry.get("file"), str) and "size" in entry
    }
    for relative, path in files.items():
        if relative in tflite:
            if sha256_of(path) != tflite[relative]["sha256"]:
                return f"{relative} differs from the file zoo wrote"
        elif relative in vocabularies:
            if _line_count(path) != vocabularies[relative]:
                return f"{relative} differs from the file zoo wrote"
        elif not (
            relative in V1_NAMES
            or ("saved_model" in manifest and V1_SAVED_MODEL.fullmatch(relative))
        ):
            return f"{relative} is not a file that zoo exports write"
    return None


def _line_count(path: Path) -> int:
    with open(path, "rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))


def check_target(out: Path) -> None:
    """``out`` may be new, empty, or wholly a zoo export (replaced when the new one is
    complete); anything else is refused, so no user's file is ever deleted."""
    if out.is_symlink():
        raise ExportError(f"{out}: is a link; give the folder itself as --out")
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if _holds_working_folder(out):
        raise ExportError(
            f"{out}: holds the current folder, which an export cannot replace; choose another --out"
        )
    if not any(out.iterdir()):
        return
    problem = ownership_problem(out)
    if problem:
        raise ExportError(
            f"{out}: exists and is not a zoo export ({problem}); choose another --out"
        )


def _holds_working_folder(folder: Path) -> bool:
    try:
        here = Path.cwd()
    except FileNotFoundError:  # the working folder was deleted: nothing to hold
        return False
    target = Path(os.path.abspath(folder))
    return target == here or target in here.parents


def new_partial(out: Path) -> Path:
    """A new folder beside ``out`` to write its export into, holding from the start the
    mark that makes it zoo's (this process's id)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    partial.mkdir()
    try:
        mark = {"format": PARTIAL_FORMAT, "pid": os.getpid()}
        (partial / PARTIAL_MARKER).write_text(json.dumps(mark) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return partial


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except (OverflowError, ValueError):  # no such process id can exist
        return False
    return True


def _marked_by(folder: Path, pid: int) -> bool:
    """Whether ``folder`` holds the mark of a partial export written by ``pid``."""
    marker = folder / PARTIAL_MARKER
    if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 1024:
        return False
    try:
        mark = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return mark == {"format": PARTIAL_FORMAT, "pid": pid}


def remove_stale_partials(out: Path) -> None:
    """Removes what exports into ``out`` killed mid-way (``kill -9``) left beside it:
    folders whose process is gone and that are zoo's by their mark or their content.
    Anything else with such a name is left alone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:partial|previous)-(\d+)(?:-[0-9a-f]+)?")
    for folder in out.parent.iterdir() if out.parent.is_dir() else ():
        match = pattern.fullmatch(folder.name)
        if not match or folder.is_symlink() or not folder.is_dir():
            continue
        pid = int(match[1])
        if _process_alive(pid):
            continue
        if not any(folder.iterdir()):
            folder.rmdir()  # killed before its mark was written: it holds nothing
        elif _marked_by(folder, pid) or ownership_problem(folder) is None:
            shutil.rmtree(folder, ignore_errors=True)


def replace_folder(partial: Path, out: Path) -> None:
    """Puts the finished ``partial`` folder, its mark removed, at ``out``; an earlier
    export there is checked again (files may have been added while exporting) and
    removed only after the new one is in place."""
    (partial / PARTIAL_MARKER).unlink()  # whole now: zoo's by its content
    check_target(out)
    previous = None
    if out.exists():
        previous = out.with_name(f".{out.name}.previous-{os.getpid()}-{secrets.token_hex(4)}")
        out.rename(previous)
    partial.rename(out)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
