"""``export.json``: what an app needs to run an export with nothing but its files.

An export folder holds the TFLite files (float and quantized), the vocabularies, the
recipe, ``export.json`` and the mobile card; a SavedModel beside them when asked for.
``export.json`` names each signature's tensors with their shapes and dtypes, the ids of
the special tokens, the text cleaning as regular expressions an app applies in order
(JavaScript syntax and flags, from ``zoo.text.formats``; zoo's own runtime uses
``zoo.text``), and the decoding settings. This
module reads and writes it without TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.errors import ZooError

MANIFEST = "export.json"
FORMAT = "zoo-export"
FORMAT_VERSION = 1


class ExportError(ZooError):
    """An export that cannot be made or used; one line naming the file or the op."""


def write_manifest(folder: Path, manifest: dict) -> None:
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}, indent=2)
    (Path(folder) / MANIFEST).write_text(text + "\n", encoding="utf-8")


def is_export(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{folder}: not an export (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: unreadable ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{path}: not a zoo export manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{path}: format version {manifest.get('format_version')!r}; this zoo reads "
            f"version {FORMAT_VERSION}"
        )
    return manifest


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
