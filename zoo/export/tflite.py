"""Conversion to TFLite with builtin ops only, float or quantized.

The route that keeps the weights: the signatures go through a SavedModel written by
``keras.export.ExportArchive``, then ``TFLiteConverter.from_saved_model`` with the
signature keys. (A ``tf.Module`` holding Keras 3 layers leaves VAR_HANDLE and
READ_VARIABLE ops that LiteRT never initialises.) Only TFLITE_BUILTINS are allowed: a
model that would need a Flex (Select TF) or custom op fails with one line naming it,
since the pip LiteRT runtime and phones without the Flex delegate cannot run it.
"""

from __future__ import annotations

import re
import tempfile
import warnings

import keras
import tensorflow as tf

from zoo.export.litert import native_logs_silenced, op_names
from zoo.export.manifest import ExportError

NON_BUILTIN = re.compile(r"\b(Flex\w+|tf\.\w+)")


def write_saved_model(model, path, signatures: dict, resources=()) -> None:
    """A SavedModel of ``model`` with ``signatures`` (name → (function, input
    signature)); ``resources`` are what the functions use besides the model's
    weights (vocabulary tables)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for resource in resources:
        archive.track(resource)
    for name, (function, input_signature) in signatures.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    archive.write_out(str(path), verbose=False)


def convert(model, signatures: dict, quantization: str = "none", representative=None) -> bytes:
    """The signatures as one builtin-only TFLite flatbuffer.

    ``quantization``: "none" (float32), "dynamic" (int8 weights, float activations),
    "float16" (float16 weights) or "int8" (int8 weights and activations, calibrated on
    ``representative()``, which yields (signature, inputs) pairs; ops without an int8
    kernel stay float).
    """
    with tempfile.TemporaryDirectory(prefix="zoo-tflite-") as folder:
        try:
            write_saved_model(model, folder, signatures)
        except ValueError as error:  # a layer that cannot be traced this way says why
            raise ExportError(f"cannot export: {str(error).splitlines()[0][:200]}") from None
        converter = tf.lite.TFLiteConverter.from_saved_model(
            folder, signature_keys=list(signatures)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            if representative is None:
                raise ExportError("int8 quantization needs calibration data")
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        try:
            # the converter and its calibrator print pages of progress and a deprecation
            # warning for their own interpreter; errors still come back as exceptions
            with native_logs_silenced(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                flatbuffer = converter.convert()
        except Exception as error:  # the converter's errors are many pages: keep the gist
            text = str(error)
            ops = sorted(set(NON_BUILTIN.findall(text)))
            if ops:
                raise ExportError(
                    f"TFLite export needs ops outside LiteRT's builtins: {', '.join(ops)}"
                ) from None
            first = next((line for line in text.splitlines() if "error" in line.lower()), text)
            raise ExportError(f"TFLite conversion failed: {first.strip()[:200]}") from None
    check_builtin_only(flatbuffer)
    return flatbuffer


VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}


def check_builtin_only(flatbuffer: bytes) -> None:
    """Refuses a file with Flex or custom ops, or with unfrozen variables."""
    from ai_edge_litert import schema_py_generated as schema

    names = op_names(flatbuffer)
    builtin = set(vars(schema.BuiltinOperator)) - {"CUSTOM"}
    outside = [name for name in names if name not in builtin]
    if outside:
        raise ExportError(
            f"TFLite export needs ops outside LiteRT's builtins: {', '.join(outside)}"
        )
    variables = sorted(VARIABLE_OPS & set(names))
    if variables:
        raise ExportError(f"TFLite export left the weights as variables ({', '.join(variables)})")
