"""Native TensorFlow kernels for the recurrent layers' training pass.

``lstm.cc`` holds the LSTM layer's training pass (input projection, time loop and every
gradient) as two CPU kernels. It is compiled on first use with the machine's C++
compiler against the installed TensorFlow's headers (``tf.sysconfig``), once per
TensorFlow version, source, compiler, CPU and ``$ZOO_KERNEL_FLAGS`` (more compiler
flags, e.g. ``-march=x86-64-v3`` for a cache shared by other CPUs), into
``$ZOO_KERNEL_CACHE`` (default ``~/.cache/zoo/kernels``); ``zoo kernels`` builds it
ahead and says where it is. When it cannot be built or loaded (no compiler, another
TensorFlow), training runs TensorFlow's ops (``scan_over_time``, ``fused_loops``), which
compute the same values, and says so once. ``ZOO_NATIVE_KERNELS=0`` turns the kernels off.

Only training uses them: inference, ``step`` and every export run TensorFlow's own ops,
so a SavedModel never needs this library.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SOURCE = Path(__file__).with_name("lstm.cc")
_lock = threading.Lock()
_state: dict = {}  # "library": the loaded ops, or "error": why there are none


class KernelBuildError(RuntimeError):
    """The native kernels could not be compiled or loaded."""


SWITCH = "ZOO_NATIVE_KERNELS"


def enabled() -> bool:
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no")


def cache_dir() -> Path:
    if os.environ.get("ZOO_KERNEL_CACHE"):
        return Path(os.environ["ZOO_KERNEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo" / "kernels"


def _compiler() -> str:
    return os.environ.get("CXX") or "g++"


def _cpu_identity() -> str:
    """The CPU's model and instruction sets: the library is built for this CPU."""
    lines = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")) and line not in lines:
                lines.append(line)
    return platform.machine() + "\n" + "\n".join(lines)


def _command(output: Path, source: Path = SOURCE) -> list[str]:
    import tensorflow as tf

    return [
        _compiler(),
        "-std=c++17",
        "-shared",
        "-fPIC",
        "-O3",
        "-march=native",
        *os.environ.get("ZOO_KERNEL_FLAGS", "").split(),
        "-DNDEBUG",
        "-w",
        *tf.sysconfig.get_compile_flags(),
        str(source),
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def library_path() -> Path:
    """Where the library for this TensorFlow, source, compiler and CPU lives."""
    import tensorflow as tf

    compiler = shutil.which(_compiler()) or _compiler()
    key = hashlib.sha256()
    for part in (
        SOURCE.read_bytes(),
        tf.__version__.encode(),
        compiler.encode(),
        " ".join(_command(Path("out"), Path(SOURCE.name))).encode(),
        _cpu_identity().encode(),
    ):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / f"lstm-{tf.__version__}-{key.hexdigest()[:16]}.so"


def build(verbose: bool = True) -> Path:
    """Compiles the library unless it is in the cache; → its path. Several processes
    may ask at once (the workers of one job): one compiles, the others wait for it."""
    path = library_path()
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 (closed below)
    except OSError as error:  # ZOO_KERNEL_CACHE names a file, a read-only place...
        reason = "not a folder" if isinstance(error, FileExistsError) else error.strerror
        raise KernelBuildError(
            f"the kernel cache {cache_dir()} cannot be used ({reason}); set "
            "ZOO_KERNEL_CACHE to a folder zoo may write"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        if verbose:
            print(
                "zoo: compiling the native LSTM kernel for this TensorFlow (once, about 30 s) ...",
                file=sys.stderr,
                flush=True,
            )
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            partial = Path(scratch) / path.name
            try:
                result = subprocess.run(
                    _command(partial), capture_output=True, text=True, check=False
                )
            except OSError as error:
                raise KernelBuildError(f"{_compiler()} could not run ({error})") from None
            if result.returncode != 0:
                lines = [line for line in result.stderr.splitlines() if "error" in line]
                detail = (lines or result.stderr.strip().splitlines() or ["no output"])[0]
                raise KernelBuildError(
                    f"{_compiler()} failed (exit {result.returncode}): {detail.strip()}"
                )
            os.replace(partial, path)
        if verbose:
            print(
                f"zoo: built {path} in {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return path


def load(verbose: bool = True):
    """The kernels' TensorFlow ops module (``tf.load_op_library``), built if need be.
    Raises ``KernelBuildError``."""
    import tensorflow as tf

    path = build(verbose)
    try:
        return tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise KernelBuildError(f"{path} could not be loaded ({first})") from None


def library():
    """The loaded ops, or None when they are off or cannot be had (said once)."""
    if not enabled():
        return None
    with _lock:
        if "library" not in _state and "error" not in _state:
            try:
                _state["library"] = load()
            except KernelBuildError as error:
                _state["error"] = str(error)
                print(
                    f"zoo: the native LSTM kernel is not available ({error}); training "
                    "runs TensorFlow's loop (the same results, slower). "
                    f"{SWITCH}=0 hides this.",
                    file=sys.stderr,
                    flush=True,
                )
        return _state.get("library")


def status(build: bool = False) -> dict:
    """Whether the kernels are on, where their library is, and whether it loads (with
    ``build``, compiling it if need be; otherwise only a library already built)."""
    report = {"enabled": enabled(), "path": None, "built": False, "error": None}
    if not report["enabled"]:
        return report
    try:
        path = library_path()
        report["path"] = str(path)
        if build or path.exists():
            load(verbose=False)
            report["built"] = True
    except KernelBuildError as error:
        report["error"] = str(error)
    return report


def lstm_layer(inputs, kernel, bias, recurrent_kernel, states, recurrent_mask=None, mask=None):
    """An LSTM layer's training pass with the native kernels: (inputs [batch, time,
    features], W_x, b or None, W_h, [h0, c0]) → (outputs [batch, time, units], [h_T,
    c_T]), the values of ``scan_over_time`` over ``LSTMCell.transition`` (σ gates, tanh
    candidate) with the same masks. None when the kernels are not available (the caller
    runs TensorFlow's ops)."""
    import tensorflow as tf

    if inputs.dtype != tf.float32 or tf.config.list_logical_devices("GPU"):
        return None  # CPU kernels for float32; elsewhere TensorFlow's ops are the fast path
    native = library()
    if native is None:
        return None
    empty = tf.zeros([0], tf.float32)
    rmask = empty if recurrent_mask is None else tf.cast(recurrent_mask, tf.float32)
    keep = empty if mask is None else tf.cast(mask, tf.float32)
    units = recurrent_kernel.shape[0]

    @tf.custom_gradient
    def run(inputs, kernel, bias, recurrent_kernel, h0, c0):
        h_states, c_states, activations, tanh_cells, h_final, c_final = native.zoo_lstm(
            inputs, kernel, bias, recurrent_kernel, h0, c0, rmask, keep
        )
        outputs = h_states if mask is None else h_states * keep[:, :, None]

        def gradient(d_outputs, d_h_final, d_c_final):
            d_outputs = tf.zeros_like(h_states) if d_outputs is None else d_outputs
            d_h_final = tf.zeros_like(h0) if d_h_final is None else d_h_final
            d_c_final = tf.zeros_like(c0) if d_c_final is None else d_c_final
            d_inputs, d_kernel, d_bias, d_recurrent, d_h0, d_c0 = native.zoo_lstm_grad(
                inputs,
                kernel,
                recurrent_kernel,
                rmask,
                keep,
                h0,
                c0,
                h_states,
                c_states,
                activations,
                tanh_cells,
                d_outputs,
                d_h_final,
                d_c_final,
            )
            d_bias = d_bias if bias.shape[0] else tf.zeros_like(bias)
            return d_inputs, d_kernel, d_bias, d_recurrent, d_h0, d_c0

        return (outputs, h_final, c_final), gradient

    bias = empty if bias is None else tf.convert_to_tensor(bias)
    kernel, recurrent_kernel = tf.convert_to_tensor(kernel), tf.convert_to_tensor(recurrent_kernel)
    h0, c0 = (tf.convert_to_tensor(state) for state in states)
    outputs, h_final, c_final = run(inputs, kernel, bias, recurrent_kernel, h0, c0)
    outputs.set_shape(inputs.shape[:2].concatenate([units]))
    return outputs, [h_final, c_final]
