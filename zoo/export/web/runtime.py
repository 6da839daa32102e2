"""The LiteRT.js runtime a web export bundles: ``@litertjs/core`` from the npm registry,
at the version ``package-lock.json`` (beside this module) pins, installed once with
``npm ci`` and copied into each web export, so the page fetches nothing from the network.

The installed packages are found in the clone's own ``zoo/export/web/node_modules``
(made by ``npm ci`` there, as ``.ci/run`` does for the browser tests) or else in
``$ZOO_HOME/web-runtime/<lock's sha256>/``, where the first web export installs them
(production dependencies only). ``@litertjs/core`` is about 40 MB unpacked, four builds
of one WebAssembly module: too large to ship as package data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from zoo.errors import Failure
from zoo.export.manifest import ExportError

HERE = Path(__file__).parent
PACKAGE = "@litertjs/core"
# What the page loads: LiteRT.js's module, its one helper module, and the WebAssembly
# builds its loader picks from (relaxed SIMD, or the compatible one for browsers without
# it); the threaded and JSPI builds need headers or flags a static server does not give.
RUNTIME_FILES = {
    "litert/core.js": "@litertjs/core/dist/index.js",
    "litert/wasm-utils.js": "@litertjs/wasm-utils/dist/index.js",
    "litert/wasm/litert_wasm_internal.js": "@litertjs/core/wasm/litert_wasm_internal.js",
    "litert/wasm/litert_wasm_internal.wasm": "@litertjs/core/wasm/litert_wasm_internal.wasm",
    "litert/wasm/litert_wasm_compat_internal.js": (
        "@litertjs/core/wasm/litert_wasm_compat_internal.js"
    ),
    "litert/wasm/litert_wasm_compat_internal.wasm": (
        "@litertjs/core/wasm/litert_wasm_compat_internal.wasm"
    ),
}
NPM_SECONDS = 600


def locked_version() -> str:
    """The version of ``@litertjs/core`` that package-lock.json pins."""
    lock = json.loads((HERE / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"][f"node_modules/{PACKAGE}"]["version"]


def installed(node_modules: Path) -> bool:
    """Whether ``node_modules`` holds the locked ``@litertjs/core`` and every file the
    page needs."""
    package = node_modules / PACKAGE / "package.json"
    try:
        version = json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return False
    return version == locked_version() and all(
        (node_modules / source).is_file() for source in RUNTIME_FILES.values()
    )


def node_modules() -> Path:
    """A ``node_modules`` folder holding the locked runtime: the clone's, or the cache's,
    installed there by ``npm ci`` when missing."""
    if installed(HERE / "node_modules"):
        return HERE / "node_modules"
    from zoo.pretrained.catalog import zoo_home

    lock = (HERE / "package-lock.json").read_bytes()
    folder = zoo_home() / "web-runtime" / hashlib.sha256(lock).hexdigest()[:16]
    if installed(folder / "node_modules"):
        return folder / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise ExportError(
            f"--format web: npm is needed once to fetch {PACKAGE} {locked_version()} "
            "(install Node.js and npm)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    from zoo.pretrained import locks

    busy = f"--format web: another export has been installing {PACKAGE} in {folder} too long"
    # two first web exports at once: one installs, the other waits and uses it
    with locks.exclusive(folder, NPM_SECONDS + 30, busy):
        if installed(folder / "node_modules"):
            return folder / "node_modules"
        return _npm_ci(npm, folder)


def _npm_ci(npm: str, folder: Path) -> Path:
    """``npm ci`` of the locked runtime in ``folder`` → its ``node_modules``."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, folder / name)
    try:
        done = subprocess.run(
            [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=NPM_SECONDS,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
    except subprocess.TimeoutExpired:
        raise Failure(f"--format web: npm ci of {PACKAGE} took over {NPM_SECONDS} s") from None
    if done.returncode != 0 or not installed(folder / "node_modules"):
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise Failure(f"--format web: npm ci of {PACKAGE} failed in {folder}: {last}")
    return folder / "node_modules"


def copy_runtime(folder: Path) -> dict:
    """Copies the runtime's files into the export ``folder``; returns what export.json
    records of it."""
    modules = node_modules()
    for target, source in RUNTIME_FILES.items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(modules / source, folder / target)
    return {"package": PACKAGE, "version": locked_version(), "wasm": "litert/wasm/"}
