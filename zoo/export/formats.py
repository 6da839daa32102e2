"""Export formats: what ``export.formats`` and ``zoo export --format`` may name.

Each format is registered by name (``zoo.registry.register_exporter``), as a plugin's
would be, and writes its files of one task's export (a ``zoo.export.exporter.TaskExport``:
the model's signatures, converter and checks) into the export folder being made,
returning what ``export.json`` records of them. ``zoo.export.exporter.export_model``
runs the formats a recipe or the CLI asks for, in the registry's order, and writes the
manifest, the card and the ownership records around them.

This module imports no TensorFlow: the CLI's choices are read from it.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

from zoo.registry import register_exporter

# The TFLite quantizations, the choices of `zoo export --quantize` and `export.quantize`
# (zoo.export.tflite.convert says what each is). The file of each: the float one is
# model.tflite.
QUANTIZATIONS = ("none", "dynamic", "int8-embeddings", "float16", "int8")
TFLITE_FILE_NAMES = {"none": "model.tflite"}


def default_formats() -> tuple[str, ...]:
    """What ``zoo export`` writes when no ``--format`` is given, in the registry's order."""
    from zoo import registry

    return tuple(entry.name for entry in registry.exporters.entries() if entry.obj.by_default)


def tflite_name(quantization: str) -> str:
    return TFLITE_FILE_NAMES.get(quantization, f"model-{quantization}.tflite")


class ExportFormat(abc.ABC):
    """One kind of file an export folder holds.

    Class attributes:
        name: the registry's key, the value of ``export.formats``.
        description: one line for ``zoo export --help``.
        by_default: whether ``zoo export`` without ``--format`` writes it.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    by_default: ClassVar[bool] = True

    @abc.abstractmethod
    def write(self, task_export, folder: Path, quantizations: tuple[str, ...]) -> dict:
        """Writes this format's files of ``task_export`` into ``folder`` (the export
        being made); returns the entries it adds to ``export.json``."""


@register_exporter
class SavedModelFormat(ExportFormat):
    name = "saved_model"
    description = "a TensorFlow SavedModel with the task's token signatures"

    def write(self, task_export, folder: Path, quantizations) -> dict:
        task_export.write_saved_model(folder / "saved_model")
        return {
            "saved_model": {
                "folder": "saved_model",
                "signatures": sorted(task_export.saved_model_signatures()[0]),
            }
        }


@register_exporter
class TFLiteFormat(ExportFormat):
    name = "tflite"
    description = "TFLite files (builtin ops only), float and each quantization asked for"
    # The float file is converted first whatever is kept: the others' size_of_float and
    # the signatures' tensors (the same in every file) are read from it.

    def write(self, task_export, folder: Path, quantizations) -> dict:
        from zoo.export.litert import LiteRTModel
        from zoo.export.manifest import sha256_of

        files = []
        for quantization in ["none", *[q for q in quantizations if q != "none"]]:
            path = folder / tflite_name(quantization)
            path.write_bytes(task_export.convert(quantization))
            files.append(
                {
                    "file": path.name,
                    "quantization": quantization,
                    "size": path.stat().st_size,
                    "sha256": sha256_of(path),
                }
            )
        for entry in files:
            entry["size_of_float"] = round(entry["size"] / files[0]["size"], 4)
        signatures = task_export.signature_specs(LiteRTModel(folder / files[0]["file"]))
        if not getattr(task_export, "keep_float", True) and len(files) > 1:
            (folder / files[0]["file"]).unlink()  # a phone build: the quantized files only
            files = files[1:]
        return {"tflite": files, "signatures": signatures}


@register_exporter
class WebFormat(ExportFormat):
    name = "web"
    description = "a static web page running the float TFLite file with LiteRT.js, offline"
    by_default = False  # it fetches LiteRT.js from npm once: asked for by name only

    def write(self, task_export, folder: Path, quantizations) -> dict:
        from zoo.export.web.page import write_web

        return write_web(task_export, folder, quantizations)
