"""``zoo serve DIR``: a web export (or a gallery of them) on http://127.0.0.1:PORT/.

The standard library's file server, with the types a browser insists on: WebAssembly
compiles while it streams only when served as ``application/wasm``, and a module script
must be JavaScript. It serves the folder as it is on disk (read-only) and listens on the
loopback address only; Ctrl-C stops it.
"""

from __future__ import annotations

import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from zoo.errors import UsageError
from zoo.export.manifest import MANIFEST

MEDIA_TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".tflite": "application/octet-stream",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


class ExportRequestHandler(SimpleHTTPRequestHandler):
    """Files of the served folder, typed by ``MEDIA_TYPES``, without a line per request."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MEDIA_TYPES}

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        """Quiet: the page makes dozens of requests; errors show in the browser."""


def web_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a web export or a gallery of them, in a few words."""
    if not folder.is_dir():
        return "no such folder"
    from zoo.export.web.gallery import GALLERY_MANIFEST

    if (folder / GALLERY_MANIFEST).is_file():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no readable {MANIFEST}"
    if not isinstance(manifest, dict) or "web" not in manifest:
        return f"its {MANIFEST} has no web page (zoo export MODEL --format web makes one)"
    if not (folder / "index.html").is_file():
        return "no index.html"
    return None


def make_server(folder, port: int = 8000) -> ThreadingHTTPServer:
    """A server of ``folder`` on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    folder = Path(folder)
    problem = web_problem(folder)
    if problem:
        raise UsageError(f"{folder}: not a web export ({problem})")
    handler = functools.partial(ExportRequestHandler, directory=str(folder))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise UsageError(f"--port {port}: cannot listen on 127.0.0.1 ({error.strerror})") from None


def serve(folder, port: int = 8000, announce=print) -> None:
    """Serves ``folder`` until Ctrl-C; ``announce`` gets the line with its address."""
    with make_server(folder, port) as server:
        announce(f"serving {folder} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a server is stopped: not an error
