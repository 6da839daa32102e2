"""``export.json``: what an app needs to run an export with nothing but its files, and
the mark by which zoo knows an export folder as its own.

An export folder holds the TFLite files (float and quantized), the vocabularies, the
recipe, ``export.json`` and the mobile card; a SavedModel beside them when asked for.
``export.json`` names each signature's tensors with their shapes and dtypes, the ids of
the special tokens, the text cleaning as regular expressions an app applies in order,
and the decoding settings. Since format version 2 it also lists every file zoo wrote
beside it (``files``: path, size, sha256, the SavedModel's files included): zoo replaces
a folder only when it holds nothing else (``zoo.export.ownership``), and checks the files
it runs against the list first.

Format version 3 is a contract an app can be written from alone, stated by the JSON
Schema ``export.schema.json`` beside this module (README, "Export contract"): tensors
are bound by name (``tensor_binding``); the vocabulary files' format
(``vocabulary_format``); each cleaning rule in a form Python's ``re`` and JavaScript read
alike, or one form for each (``text.regex_dialect``), and no Unicode normalization; the
decoding, step by step, and the output (``decoding``); and it names only files that are
there. Every ``export.json`` is checked against the schema when it is written and when
it is read.

Versions 1 (the exports of zoo 0.1: TFLite entries with their size and sha256,
vocabularies with their token counts only) and 2 are still read, with the checks of
``check_manifest`` alone.

This module reads, checks and writes it without TensorFlow. Every problem is one line
that names the file, and for a missing or mistyped value its path inside
``export.json`` (``tflite[0].sha256: missing``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from pathlib import Path, PurePosixPath

from zoo.documents import field, read_json
from zoo.errors import ZooError
from zoo.limits import MAX_BEAM_WIDTH, MAX_GENERATE_LENGTH

MANIFEST = "export.json"
FORMAT = "zoo-export"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
SCHEMA = Path(__file__).resolve().parent / "export.schema.json"
SHA256 = re.compile(r"[0-9a-f]{64}")

# What every export states (format 3): the contract's parts that no task changes.
TENSOR_BINDING = {
    "by": "name",
    "why": "feed every input and read every output by its name in signatures: runtimes "
    "list a signature's tensors in different orders (LiteRT.js: state_0, tokens, state_1; "
    "Python's signature runners: by name), so a call by position mis-wires them",
}
VOCABULARY_FORMAT = {
    "encoding": "utf-8",
    "line_end": "\n",
    "id": "line number, from 0",
    "token": "the whole line without its line end, never stripped: ' ' is a token of a "
    "character model; the last line ends with a line end too",
}
REGEX_DIALECT = {
    "pattern": "a string is read alike by Python's re and JavaScript; an object gives each "
    "its own form",
    "python": "re.sub(pattern, with, text), no flags",
    "javascript": 'text.replace(new RegExp(pattern, "gu"), with)',
    "with": "plain text: no group references",
    "lowercase": "Unicode's full lower-case mapping: str.lower(), String.toLowerCase() (not "
    "toLocaleLowerCase)",
    "trim": "spaces (U+0020) removed at both ends",
}


def text_conventions() -> dict:
    """What a task's ``text`` states of the regular expressions and of Unicode: zoo
    normalizes nothing (an accent typed as a combining mark is not a letter of the
    precomposed one), and its letters and case mappings are those of this Python's
    Unicode database."""
    return {
        "regex_dialect": REGEX_DIALECT,
        "unicode_normalization": "none",
        "unicode_version": unicodedata.unidata_version,
    }


class ExportError(ZooError):
    """An export that cannot be made or used; one line naming the file or the op."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_records(folder: Path, leave_out: tuple = ()) -> list[dict]:
    """Every file under ``folder`` but ``export.json`` and ``leave_out`` (names at its
    top): its path (``/``-separated, relative), size and sha256, sorted by path."""
    folder = Path(folder)
    records = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in (MANIFEST, *leave_out):
            records.append(
                {"path": relative, "size": path.stat().st_size, "sha256": sha256_of(path)}
            )
    return records


def write_manifest(folder: Path, manifest: dict, files: list[dict]) -> None:
    """Writes ``export.json`` into ``folder``; ``files``: ``file_records`` of what zoo
    wrote. A document that breaks the contract (``check_contract``) is refused."""
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **manifest,
        "tensor_binding": TENSOR_BINDING,
        "files": files,
    }
    check_contract(document, str(Path(folder) / MANIFEST))
    (Path(folder) / MANIFEST).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def export_schema() -> dict:
    """The whole JSON Schema of format version 3 (draft 2020-12): the common part in
    ``export.schema.json``, and each registered task's part (``Task.export_schema``,
    which may refer to the common ``$defs``) applied where ``task`` names it."""
    from zoo import registry

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    schema["allOf"] = [
        {"if": {"properties": {"task": {"const": entry.name}}}, "then": entry.obj.export_schema}
        for entry in registry.tasks.entries()
        if entry.obj.export_schema
    ]
    return schema


@functools.cache
def schema_validator():
    """A validator of ``export_schema()``, checked once."""
    from jsonschema import Draft202012Validator

    schema = export_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_contract(document: dict, label: str) -> None:
    """A format 3 ``export.json`` as its schema states it, and naming no file that its
    ``files`` does not list; one line naming the first problem's path if not."""
    from jsonschema.exceptions import best_match

    error = best_match(schema_validator().iter_errors(document))
    if error is not None:
        where = json_path(error.absolute_path)
        if error.validator == "required":
            missing = next(name for name in error.validator_value if name not in error.instance)
            where = f"{where}.{missing}" if where else missing
            raise ExportError(f"{label}: {where}: missing")
        message = " ".join(error.message.split())[:200]
        raise ExportError(f"{label}: {where}: {message}" if where else f"{label}: {message}")
    listed = listed_files(document)
    named = [
        (f"tflite[{index}].file", entry["file"])
        for index, entry in enumerate(document.get("tflite", []))
    ]
    named += [
        (f"{key}.file", entry["file"])
        for key, entry in document.items()
        if isinstance(entry, dict) and isinstance(entry.get("file"), str)
    ]
    for path, name in named:
        if name not in listed:
            raise ExportError(f"{label}: {path}: {name} is not in the export's files")
    folder = document.get("saved_model", {}).get("folder")
    if folder is not None and not any(path.startswith(f"{folder}/") for path in listed):
        raise ExportError(f"{label}: saved_model.folder: {folder} is not in the export's files")


def json_path(parts) -> str:
    """``tflite[0].sha256`` of the parts ``("tflite", 0, "sha256")``."""
    found = ""
    for part in parts:
        found += f"[{part}]" if isinstance(part, int) else f".{part}" if found else str(part)
    return found


def is_export(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder) -> dict:
    """``folder``'s ``export.json``, read within the bounds of ``zoo.documents`` and
    checked (``check_manifest``): everything a runtime reads from it is there; from
    format version 3, all it states as its schema says (``check_contract``)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ExportError(f"{folder}: not an export (no {MANIFEST})")
    manifest = read_json(path, "zoo export manifest", ExportError)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f'{path}: not a zoo export manifest (no "format": "{FORMAT}")')
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ExportError(
            f"{path}: format version {version!r}; this zoo reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    check_manifest(manifest, str(path))
    if version >= 3:
        check_contract(manifest, str(path))
    return manifest


# Decoding settings an export.json could set past any sensible use: path → (least, most).
DECODING_RANGES = {
    "decoding.num_steps": (2, MAX_GENERATE_LENGTH),
    "decoding.max_length": (1, MAX_GENERATE_LENGTH),
    "decoding.beam_width": (1, MAX_BEAM_WIDTH),
}


def check_manifest(manifest: dict, label: str) -> None:
    """Every value the runtime reads, with its type (one line naming its path if not),
    and every file name a plain path inside the export."""

    def get(path, kind):
        return field(manifest, path, kind, label, ExportError)

    from zoo import registry

    name = get("task", str)
    if name not in registry.tasks:
        known = ", ".join(registry.tasks.names())
        raise ExportError(f"{label}: task: expected one of {known}, got {name!r}")
    task = registry.tasks.get(name)
    get("text", dict)
    for path, kind in task.export_fields:
        value = get(path, kind)
        if path.endswith(".file"):
            check_name(value, path, label)
        least, most = DECODING_RANGES.get(path, (None, None))
        if least is not None and not least <= value <= most:
            raise ExportError(f"{label}: {path}: expected {least} to {most}, got {value}")
    if "tflite" in manifest:
        for index in range(len(get("tflite", list))):
            check_name(get(f"tflite[{index}].file", str), f"tflite[{index}].file", label)
            get(f"tflite[{index}].quantization", str)
            get(f"tflite[{index}].size", int)
            check_sha256(get(f"tflite[{index}].sha256", str), f"tflite[{index}].sha256", label)
        for path in task.export_tensors:
            for index in range(len(get(path, list))):
                get(f"{path}[{index}].name", str)
                get(f"{path}[{index}].dtype", str)
                for axis in range(len(get(f"{path}[{index}].shape", list))):
                    get(f"{path}[{index}].shape[{axis}]", int)
    if manifest["format_version"] >= 2:
        for index in range(len(get("files", list))):
            check_name(get(f"files[{index}].path", str), f"files[{index}].path", label)
            get(f"files[{index}].size", int)
            check_sha256(get(f"files[{index}].sha256", str), f"files[{index}].sha256", label)


def check_name(name: str, path: str, label: str) -> None:
    """A file name from export.json must stay inside the export: relative, no ``..``."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name or {"..", "."} & set(parts):
        raise ExportError(f"{label}: {path}: {name!r} is not a path inside the export")


def check_sha256(value: str, path: str, label: str) -> None:
    if not SHA256.fullmatch(value):
        raise ExportError(f"{label}: {path}: expected 64 lowercase hex digits, got {value[:80]!r}")


def listed_files(manifest: dict) -> dict[str, dict]:
    """``files`` by path (version 2); a version 1 export lists none."""
    return {record["path"]: record for record in manifest.get("files", [])}


def check_file(folder, name: str, size: int, sha256: str) -> Path:
    """``folder/name`` after checking its size and sha256 against what export.json says
    (a damaged file, or one copied in from another export, is refused)."""
    path = Path(folder) / name
    if not path.is_file():
        raise ExportError(f"{path}: missing (export.json lists it)")
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ExportError(
            f"{path}: {actual_size:,} bytes, but export.json lists {size:,}: the file is "
            "damaged or from another export"
        )
    actual = sha256_of(path)
    if actual != sha256:
        raise ExportError(
            f"{path}: sha256 {actual[:16]}…, but export.json lists {sha256[:16]}…: the file "
            "is damaged or from another export"
        )
    return path


def checked_listed_file(folder, manifest: dict, name: str) -> Path:
    """``folder/name``, checked against its ``files`` record when the export has them
    (version 2: every file it wrote); a version 1 export's file as it is."""
    if manifest["format_version"] < 2:
        return Path(folder) / name
    record = listed_files(manifest).get(name)
    if record is None:
        raise ExportError(f"{Path(folder) / MANIFEST}: files: {name} is not listed")
    return check_file(folder, name, record["size"], record["sha256"])


def tflite_file(manifest: dict, folder, quantization: str | None = None) -> dict:
    """The manifest's entry of the TFLite file with ``quantization``; by default the
    first listed that ``folder`` holds (the float file, or in a shipped model, whose
    folder keeps only the phone-ready file, that one)."""
    files = manifest.get("tflite", [])
    if not files:
        raise ExportError("the export holds no TFLite file (export it with --format tflite)")
    if quantization is None:
        present = [entry for entry in files if (Path(folder) / entry["file"]).is_file()]
        if not present:
            raise ExportError(f"{folder}: none of the export's TFLite files is there")
        return present[0]
    for entry in files:
        if entry["quantization"] == quantization:
            return entry
    known = ", ".join(entry["quantization"] for entry in files)
    raise ExportError(f"the export has no '{quantization}' TFLite file (it has: {known})")
