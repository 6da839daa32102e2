"""Running an export's TFLite file with LiteRT and NumPy only, as a phone app does.

Nothing here imports TensorFlow: ``zoo generate EXPORT_DIR`` and ``zoo translate
EXPORT_DIR`` run from these classes, which are also the reference for what an app does
with the files (``export.json`` says the same in data).

Both LiteRT Python APIs run a signature: the classic ``Interpreter`` and the newer
``CompiledModel`` (``api="compiled_model"``); exports are checked with both.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
from pathlib import Path

import numpy as np

from zoo.export.manifest import (
    MANIFEST,
    ExportError,
    check_file,
    checked_listed_file,
    read_manifest,
    tflite_file,
)

LITERT_APIS = ("interpreter", "compiled_model")


@contextlib.contextmanager
def native_logs_silenced():
    """LiteRT's native code logs INFO lines to the process's stderr when a model loads
    (delegates, accelerators, plugins it could not find), with no switch to turn them
    off; they are hidden here unless ZOO_DEBUG is set. Errors still reach Python."""
    if os.environ.get("ZOO_DEBUG"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def native_logs_silenced_at_exit() -> None:
    """The ``CompiledModel`` API keeps an environment of accelerators alive until the
    process ends, and its destructor logs ``INFO: DestroyAccelerator`` lines after
    Python has finished (two, once any compiled model was made). Nothing of zoo's is
    written that late: stderr is closed to them then, unless ZOO_DEBUG is set."""
    if not os.environ.get("ZOO_DEBUG"):
        atexit.register(_close_stderr)


def _close_stderr() -> None:
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def op_names(flatbuffer: bytes) -> list[str]:
    """The distinct op names of a TFLite flatbuffer, every subgraph included (a WHILE
    loop's body, each signature's graph), read from the file with LiteRT's schema."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    builtin_names = {
        code: name
        for name, code in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    names = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if number == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            names.add(custom.decode() if isinstance(custom, bytes) else str(custom))
        else:
            names.add(builtin_names.get(number, f"BUILTIN_{number}"))
    return sorted(names)


class LiteRTModel:
    """One .tflite file: ``run(signature, inputs) → outputs``, dicts of NumPy arrays by
    tensor name, through the ``Interpreter`` or the ``CompiledModel`` API."""

    def __init__(self, path, api: str = "interpreter", content: bytes | None = None):
        if api not in LITERT_APIS:
            raise ExportError(f"unknown LiteRT API {api!r} (known: {', '.join(LITERT_APIS)})")
        self.path, self.api = Path(path), api
        self._ready = set()  # signatures run once
        try:
            if content is None:
                content = self.path.read_bytes()
            with native_logs_silenced():
                if api == "interpreter":
                    from ai_edge_litert.interpreter import Interpreter

                    self._interpreter = Interpreter(model_content=content)
                    self._runners = {}
                else:
                    from ai_edge_litert.compiled_model import CompiledModel

                    native_logs_silenced_at_exit()
                    self._compiled = CompiledModel.from_buffer(content)
                    self._buffers = {}
        except FileNotFoundError:
            raise ExportError(f"{path}: no such TFLite file") from None
        except (ValueError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
            raise ExportError(f"{path}: not a usable TFLite file ({reason})") from None

    @classmethod
    def from_bytes(cls, content: bytes, api: str = "interpreter") -> LiteRTModel:
        return cls("<memory>", api, content)

    def signatures(self) -> dict:
        source = self._interpreter if self.api == "interpreter" else self._compiled
        return source.get_signature_list()

    def tensor_details(self, signature: str) -> dict:
        """``{"inputs": {name: (shape, dtype)}, "outputs": ...}`` of ``signature`` as the
        file declares them (shape a list of ints, dtype a NumPy name)."""
        try:
            if self.api == "interpreter":
                runner = self._interpreter.get_signature_runner(signature)
                sides = {
                    "inputs": runner.get_input_details(),
                    "outputs": runner.get_output_details(),
                }
            else:
                sides = {
                    "inputs": self._compiled.get_input_tensor_details(signature),
                    "outputs": self._compiled.get_output_tensor_details(signature),
                }
        except (ValueError, RuntimeError, KeyError):
            raise ExportError(f"{self.path}: no signature '{signature}'") from None
        return {
            side: {
                name: ([int(size) for size in detail["shape"]], np.dtype(detail["dtype"]).name)
                for name, detail in details.items()
            }
            for side, details in sides.items()
        }

    def run(self, signature: str, inputs: dict) -> dict:
        try:
            if signature in self._ready:
                return self._run(signature, inputs)
            with native_logs_silenced():  # the first call applies delegates, and logs
                outputs = self._run(signature, inputs)
            self._ready.add(signature)
            return outputs
        except (ValueError, RuntimeError, KeyError) as error:
            reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
            raise ExportError(f"{self.path}: running '{signature}' failed ({reason})") from None

    def _run(self, signature, inputs):
        if self.api == "interpreter":
            if signature not in self._runners:
                self._runners[signature] = self._interpreter.get_signature_runner(signature)
            return self._runners[signature](**inputs)
        return self._run_compiled(signature, inputs)

    def _run_compiled(self, signature, inputs):
        if signature not in self._buffers:
            self._buffers[signature] = self._make_buffers(signature)
        input_buffers, outputs = self._buffers[signature]
        for name, buffer in input_buffers.items():
            buffer.write(np.ascontiguousarray(inputs[name]))
        self._compiled.run_by_name(
            signature, input_buffers, {name: entry[0] for name, entry in outputs.items()}
        )
        return {
            name: buffer.read(int(np.prod(shape)), dtype).reshape(shape)
            for name, (buffer, shape, dtype) in outputs.items()
        }

    def _make_buffers(self, signature):
        """Input buffers by name, and each output's buffer, shape and dtype."""
        compiled = self._compiled
        details = compiled.get_output_tensor_details(signature)
        inputs = {
            name: compiled.create_input_buffer_by_name(signature, name)
            for name in compiled.get_input_tensor_details(signature)
        }
        outputs = {
            name: (
                compiled.create_output_buffer_by_name(signature, name),
                tuple(detail["shape"]),
                np.dtype(detail["dtype"]),
            )
            for name, detail in details.items()
        }
        return inputs, outputs


class LiteRTLanguageModel:
    """A language model's ``step`` signature (batch 1) as a decoding backend."""

    def __init__(self, model: LiteRTModel, manifest: dict):
        self.model = model
        self.state_names = [tensor["name"] for tensor in manifest["signatures"]["step"]["states"]]
        self.state_shapes = [
            tuple(tensor["shape"]) for tensor in manifest["signatures"]["step"]["states"]
        ]

    def initial_states(self, batch_size):
        if batch_size != 1:
            raise ExportError(f"the TFLite step runs one sequence at a time, not {batch_size}")
        return [np.zeros(shape, np.float32) for shape in self.state_shapes]

    def step(self, tokens, states):
        outputs = self.model.run(
            "step",
            {
                "tokens": np.asarray(tokens, np.int32),
                **dict(zip(self.state_names, states, strict=True)),
            },
        )
        return outputs["logits"], [outputs[name] for name in self.state_names]


class LiteRTTranslator:
    """A translator's ``encode`` (one sentence) and ``decode_step`` (a fixed number of
    rows, the beam width it was exported for) as a decoding backend. Fewer rows are
    padded with copies of the first and cut from the outputs, so greedy search and
    narrower beams run on the same file."""

    preferred_batch = 1

    def __init__(self, model: LiteRTModel, manifest: dict):
        self.model = model
        decode = manifest["signatures"]["decode_step"]
        self.decode_rows = decode["inputs"][0]["shape"][0]
        self.carried = [tensor["name"] for tensor in decode["inputs"][1:]]
        self.state_names = [tensor["name"] for tensor in decode["outputs"][1:]]

    def encode(self, ids, valid_len):
        rows = [
            self.model.run("encode", {"source": ids[i : i + 1], "valid_len": valid_len[i : i + 1]})
            for i in range(len(ids))
        ]
        return {name: np.concatenate([row[name] for row in rows]) for name in self.carried}

    def decode_step(self, tokens, state):
        num_rows = len(tokens)
        if num_rows > self.decode_rows:
            raise ExportError(
                f"this export's decode_step takes at most {self.decode_rows} rows (its beam "
                f"width); {num_rows} asked: export again with --beam {num_rows}"
            )
        pad = np.zeros(self.decode_rows - num_rows, np.int64)  # copies of row 0
        feed = {
            "token": np.concatenate(
                [np.asarray(tokens, np.int32), np.asarray(tokens, np.int32)[pad]]
            )
        }
        for name in self.carried:
            feed[name] = np.concatenate([state[name], state[name][pad]])
        outputs = self.model.run("decode_step", feed)
        new_state = {**state, **{name: outputs[name][:num_rows] for name in self.state_names}}
        return outputs["log_probs"][:num_rows], new_state


def load_export(folder, quantization: str | None = None, api: str = "interpreter"):
    """An export folder → a ``TextGenerator`` or a ``SentenceTranslator`` running its
    TFLite file (``quantization``: which one; default the first listed, the float file
    or, in a shipped model, the phone-ready one). ``export.json`` is checked first, then
    the files it runs against it: the TFLite file's size, sha256 and tensors, each
    vocabulary's sha256 (format version 2), token count and the scores per token, so
    that a file from another export is one line naming it, never wrong output."""
    from zoo import registry

    folder = Path(folder)
    manifest = read_manifest(folder)
    entry = tflite_file(manifest, folder, quantization)
    model = LiteRTModel(check_file(folder, entry["file"], entry["size"], entry["sha256"]), api)
    check_tensors(model, manifest, folder / MANIFEST)
    return registry.tasks.get(manifest["task"]).export_runtime(model, manifest, folder)


def check_tensors(model: LiteRTModel, manifest: dict, label) -> None:
    """The tensors export.json describes (which the runtime allocates and feeds) are the
    TFLite file's own: same names, shapes and dtypes."""
    from zoo import registry

    for path in registry.tasks.get(manifest["task"]).export_tensors:
        _, signature, key = path.split(".")
        declared = model.tensor_details(signature)["outputs" if key == "outputs" else "inputs"]
        for index, tensor in enumerate(manifest["signatures"][signature][key]):
            found = declared.get(tensor["name"])
            if found != (tensor["shape"], tensor["dtype"]):
                has = f"{found[1]} {found[0]}" if found else "no such tensor"
                raise ExportError(
                    f"{label}: {path}[{index}]: {tensor['dtype']} {tensor['shape']}, but "
                    f"{model.path.name} has {has}: export.json is not this file's"
                )


def checked_vocab(folder: Path, manifest: dict, key: str, model: LiteRTModel):
    """The vocabulary ``manifest[key]`` names, checked against its sha256 (listed since
    format version 2), its token count, and the scores ``model`` gives per token."""
    from zoo import registry
    from zoo.text.vocab import Vocab

    path = checked_listed_file(folder, manifest, manifest[key]["file"])
    vocab = Vocab.load(path)
    if len(vocab) != manifest[key]["size"]:
        raise ExportError(
            f"{path}: {len(vocab)} tokens, but export.json says {key}.size "
            f"{manifest[key]['size']}: the file is damaged or from another export"
        )
    scoring = registry.tasks.get(manifest["task"]).export_scored_vocabularies
    if key in scoring:
        signature, output = scoring[key]
        found = model.tensor_details(signature)["outputs"].get(output)
        width = found[0][-1] if found and found[0] else None
        if width != len(vocab):
            raise ExportError(
                f"{path}: {len(vocab)} tokens, but {model.path.name} scores {width}: they "
                "are not from the same export"
            )
    return vocab
