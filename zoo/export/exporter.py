"""``zoo export``: a trained model → a folder an app can ship.

    export/
        model.tflite            float32, builtin ops only
        model-dynamic.tflite    one file per quantization asked for
        saved_model/            token signatures for TF Serving and Python (optional)
        vocab.txt | src_vocab.txt, tgt_vocab.txt
        recipe.yaml
        export.json             signatures, tensors, special ids, cleaning, decoding
        card.json, card.md      the mobile card: files, ops, parity, latency, quality

The folder is written under a temporary name and renamed when complete, so an
interrupted export leaves nothing that looks finished, and an earlier export in its
place stays until the new one is whole. ``export.json`` lists every file written with
its sha256: an existing ``--out`` is replaced only when it holds nothing else
(``zoo.export.ownership``). Parity with the Keras model, latency and the quality of
each quantization are measured while exporting (``measure=False`` skips them) and
written to the card.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import time
from pathlib import Path

import zoo
from zoo import registry
from zoo.export.card import write_card
from zoo.export.litert import LITERT_APIS, LiteRTModel, native_logs_silenced
from zoo.export.manifest import ExportError, file_records, write_manifest
from zoo.export.ownership import (
    PARTIAL_MARKER,
    check_target,
    new_partial,
    remove_stale_partials,
    replace_folder,
)
from zoo.recipe import recipe_hash


def tensor_specs(model: LiteRTModel, signature: str, names: dict) -> dict:
    """Inputs and outputs of a TFLite signature, in ``names``' order, with their shapes
    and dtypes as the file declares them."""
    details = model.tensor_details(signature)
    return {
        side: [
            {"name": name, "shape": details[side][name][0], "dtype": details[side][name][1]}
            for name in names[side]
        ]
        for side in ("inputs", "outputs")
    }


class TaskExport:
    """What the language-model and translator exports share: the decoding backend of
    one of their TFLite files. Subclasses name it in ``litert_class`` and say how to read
    its signatures in ``signature_specs``."""

    litert_class = None
    # False: the TFLite format leaves the float model.tflite out of the export (a phone
    # build of the quantized files); set from ``zoo export --no-float``.
    keep_float = True

    def size_note(self, files: list) -> str | None:
        """What the card says of the files' sizes (the embedding tables of a model of
        tokens: ``size_note``)."""
        return size_note(files)

    def litert_backend(self, folder: Path, entry: dict, api: str):
        path = folder / entry["file"]
        reader = LiteRTModel(path)  # the Interpreter reads the signatures' tensors
        runner = reader if api == "interpreter" else LiteRTModel(path, api=api)
        return self.litert_class(runner, {"signatures": self.signature_specs(reader)})

    def parity_backends(self, folder: Path, files: list) -> dict:
        """The TFLite file whose parity the card measures, in each LiteRT API, by label:
        the float file, or a phone build's (``--no-float``) first file."""
        float_file = next((e for e in files if e["quantization"] == "none"), None) or (
            files[0] if files else None
        )
        if float_file is None:
            return {}
        quantization = float_file["quantization"]
        label = "tflite" if quantization == "none" else f"tflite/{quantization}"
        return {
            f"{label}/{api}": self.litert_backend(folder, float_file, api) for api in LITERT_APIS
        }


def timed(function, repeats: int) -> float:
    """Mean seconds of ``function()`` over ``repeats`` calls, after one warm-up call."""
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def export_model(
    exporter,
    out,
    formats=("saved_model", "tflite"),
    quantizations=("dynamic",),
    measure=True,
) -> dict:
    """Writes the export of ``exporter`` (a task's ``TaskExport``) to ``out`` in each of
    ``formats`` (registered in ``zoo.registry.exporters``); returns its card."""
    out = Path(out)
    known = registry.exporters.names()
    if not formats or set(formats) - set(known):
        raise ExportError(
            f"export formats: any of {', '.join(known)}, got {', '.join(formats) or 'none'}"
        )
    check_target(out)
    # a relative --out such as "." has no name to put its partial folder beside
    target = Path(os.path.abspath(out))
    remove_stale_partials(target)
    partial = None
    try:
        partial = new_partial(target)
        for asset in exporter.assets():
            shutil.copy(asset, partial / asset.name)
        manifest = {
            "task": exporter.recipe["task"],
            "recipe": exporter.recipe["name"],
            "recipe_sha256": getattr(exporter, "recipe_sha256", None)
            or recipe_hash(exporter.recipe),
            "zoo_version": zoo.__version__,
            **exporter.manifest(),
        }
        for name in registry.exporters.names():  # the registry's order, whatever was asked
            if name in formats:
                manifest.update(
                    registry.exporters.get(name).write(exporter, partial, quantizations)
                )
        files = manifest.get("tflite", [])
        card = {"files": files, "machine": machine(), "size_note": exporter.size_note(files)}
        if measure:
            # LiteRT's native code logs as its models and accelerators come and go
            with native_logs_silenced():
                card.update(exporter.measure(partial, files, "saved_model" in formats))
                gc.collect()
        write_card(partial, manifest, card)
        write_manifest(partial, manifest, file_records(partial, leave_out=(PARTIAL_MARKER,)))
        replace_folder(partial, target)
    except BaseException:  # a full disk included (zoo.errors names it): nothing is left
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    return card


# A dynamic-range file is expected to be at most this share of the float file.
DYNAMIC_SIZE_TARGET = 0.30


def size_note(files: list) -> str | None:
    """What the card says when a dynamic-range file misses its size target: the
    converter (TF 2.21) stores an embedding table read by GATHER as int8 with one scale,
    but a tied output layer's table a second time, and a small table in float32."""
    for entry in files:
        if entry["quantization"] == "dynamic" and entry["size_of_float"] > DYNAMIC_SIZE_TARGET:
            miss = entry["size_of_float"] - DYNAMIC_SIZE_TARGET
            return (
                f"`{entry['file']}` is {entry['size_of_float']:.1%} of the float file, "
                f"{miss:.1%} over the {DYNAMIC_SIZE_TARGET:.0%} target: dynamic-range "
                "quantization stores a tied embedding table twice (GATHER's copy and the "
                "output layer's) and small tables in float32; int8-embeddings stores each "
                "table once, as int8 rows."
            )
    return None


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "litert_apis": list(LITERT_APIS),
    }
