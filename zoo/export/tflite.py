"""Conversion to TFLite with builtin ops only, float or quantized.

The route that keeps the weights: the signatures go through a SavedModel written by
``keras.export.ExportArchive``, then ``TFLiteConverter.from_saved_model`` with the
signature keys. (A ``tf.Module`` holding Keras 3 layers leaves VAR_HANDLE and
READ_VARIABLE ops that LiteRT never initialises.) Only TFLITE_BUILTINS are allowed: a
model that would need a Flex (Select TF) or custom op fails with one line naming it,
since the pip LiteRT runtime and phones without the Flex delegate cannot run it.

"int8-embeddings" is "dynamic" with the embedding tables traced as int8 rows, each with
its own scale (``int8_embeddings``). The converter's dynamic-range pass alone quantizes a
table that GATHER reads with ONE scale for the whole table, so a rare word's small row
keeps few levels; and a tied output layer (logits = o E^T) gets a second, per-row int8
copy of E for its FULLY_CONNECTED. Traced as int8, the GATHER reads the int8 table and
the output layer's weights are the same bytes, stored once (the converter merges equal
read-only buffers).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import warnings

import keras
import numpy as np
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


def convert(
    model,
    signatures: dict,
    quantization: str = "none",
    representative=None,
    embeddings=(),
    tied=(),
) -> bytes:
    """The signatures as one builtin-only TFLite flatbuffer.

    ``quantization``: "none" (float32), "dynamic" (int8 weights, float activations),
    "int8-embeddings" (dynamic, with ``embeddings`` and the output layers of ``tied``
    read from int8 rows: ``int8_embeddings``), "float16" (float16 weights) or "int8"
    (int8 weights and activations, calibrated on ``representative()``, which yields
    (signature, inputs) pairs; ops without an int8 kernel stay float).
    """
    tables = (
        int8_embeddings(embeddings, tied)
        if quantization == INT8_EMBEDDINGS
        else contextlib.nullcontext()
    )
    with tempfile.TemporaryDirectory(prefix="zoo-tflite-") as folder:
        try:
            with tables:
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


INT8_EMBEDDINGS = "int8-embeddings"
# A row's scale is stored as an int32 count of its table's unit, max scale = 2^24 units
# (float32 holds every integer up to 2^24): a float32 scale vector read by GATHER would
# itself be quantized to int8 with one scale by the dynamic-range pass.
SCALE_STEPS = 2**24


def int8_rows(table) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """``table`` [rows, width] as (q int8 [rows, width], steps int32 [rows], unit
    float32): row r ≈ q[r] * steps[r] * unit, symmetric, its largest |value| at ±127,
    so every element is within half its row's scale steps[r] * unit (an all-zero row
    gets scale ``unit``)."""
    table = np.asarray(table, np.float32)
    wanted = np.abs(table).max(axis=1) / 127
    peak = float(wanted.max())
    unit = np.float32(peak / SCALE_STEPS if peak > 0 else 1.0)
    steps = np.maximum(np.rint(wanted / unit), 1).astype(np.int32)
    scale = steps.astype(np.float32) * unit
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, steps, unit


def int8_lookup(q, steps, unit):
    """An Embedding layer's ``call`` reading int8 rows: GATHER of the int8 table and of
    the rows' scale steps, CAST to float32, MUL (all builtin)."""

    def lookup(tokens):
        rows = tf.cast(tf.gather(tf.constant(q), tokens), tf.float32)
        scale = tf.cast(tf.gather(tf.constant(steps), tokens), tf.float32) * unit
        return rows * scale[..., None]

    return lookup


def int8_tied_logits(owner, q, steps, unit):
    """``owner.logits`` of a tied output layer from the int8 table: (o q^T) * scale + b.
    The converter folds the MUL into the FULLY_CONNECTED, whose per-row int8 weights
    are then q again, the bytes of the table GATHER reads."""
    scale = steps.astype(np.float32) * unit

    def logits(outputs):
        table = tf.cast(tf.constant(q), tf.float32)
        return tf.matmul(outputs, table, transpose_b=True) * scale + owner.head_bias

    return logits


@contextlib.contextmanager
def int8_embeddings(embeddings, tied=()):
    """While tracing an export: each Keras ``Embedding`` of ``embeddings`` reads int8
    rows (``int8_rows``) instead of its float table, and each layer of ``tied`` (its
    logits o E^T + head_bias through its ``embedding`` E) computes its logits from the
    same int8 rows. The model's weights and methods are untouched after the block."""
    replaced = []
    try:
        for layer in embeddings:
            layer.call = int8_lookup(*int8_rows(layer.embeddings))
            replaced.append((layer, "call"))
        for owner in tied:
            owner.logits = int8_tied_logits(owner, *int8_rows(owner.embedding.embeddings))
            replaced.append((owner, "logits"))
        yield
    finally:
        for layer, name in replaced:
            delattr(layer, name)  # the class's method again


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
