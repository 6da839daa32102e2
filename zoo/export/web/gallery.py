"""``zoo export A B ... --format web --out DIR``: a gallery, one page linking each model's.

    DIR/
        index.html, style.css, icon.svg    the gallery: each model's name, task, metrics
        gallery.json                       format zoo-web-gallery: models, files (sha256)
        A/, B/, ...                        each a whole web export (its own export.json)

Each model's folder is a web export like any other (served alone it works alone, offline
after a visit). The gallery is written as an export is: into a marked folder beside
``DIR``, renamed into place when whole; an existing ``DIR`` is replaced only when it is
a gallery zoo wrote: its own files as ``gallery.json`` lists them and, besides them,
only its models' folders, each wholly a zoo export.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import shutil
from pathlib import Path

from zoo.export.manifest import ExportError, read_manifest, sha256_of
from zoo.export.ownership import (
    PARTIAL_MARKER,
    new_partial,
    ownership_problem,
    remove_stale_partials,
)
from zoo.export.web.page import PAGE

GALLERY_MANIFEST = "gallery.json"
GALLERY_FORMAT = "zoo-web-gallery"
GALLERY_FILES = ("style.css", "icon.svg")


def export_gallery(names, formats, quantizations, out, beam_width=None, measure=True) -> Path:
    """Exports each of ``names`` (run directories or catalog models) as a web export into
    ``out/<its name>/`` and writes the gallery page; returns ``out``."""
    from zoo.pipeline import export_run

    formats = tuple(formats) or ("web",)
    if "web" not in formats:
        raise ExportError("several models: a gallery is made with --format web")
    if out is None:
        raise ExportError("several models: give the gallery's folder as --out")
    folders = [folder_name(name) for name in names]
    repeated = sorted({folder for folder in folders if folders.count(folder) > 1})
    if repeated:
        raise ExportError(f"several models: each is named once, got {', '.join(repeated)} twice")
    target = Path(os.path.abspath(out))
    check_gallery_target(target)
    remove_stale_partials(target)
    partial = new_partial(target)
    try:
        models = []
        for name, folder in zip(names, folders, strict=True):
            export_run(name, formats, quantizations, partial / folder, beam_width, measure)
            manifest = read_manifest(partial / folder)
            models.append({"folder": folder, "task": manifest["task"], **manifest["web"]["model"]})
        for name in GALLERY_FILES:
            shutil.copyfile(PAGE / name, partial / name)
        (partial / "index.html").write_text(gallery_page(models), encoding="utf-8")
        files = [
            {
                "path": name,
                "size": (partial / name).stat().st_size,
                "sha256": sha256_of(partial / name),
            }
            for name in ("index.html", *GALLERY_FILES)
        ]
        document = {"format": GALLERY_FORMAT, "format_version": 1, "models": models, "files": files}
        (partial / GALLERY_MANIFEST).write_text(json.dumps(document, indent=2) + "\n", "utf-8")
        (partial / PARTIAL_MARKER).unlink()  # whole now: zoo's by its content
        check_gallery_target(target)
        previous = None
        if target.exists():
            previous = target.with_name(
                f".{target.name}.previous-{os.getpid()}-{secrets.token_hex(4)}"
            )
            target.rename(previous)
        partial.rename(target)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Path(out)


def folder_name(name: str) -> str:
    """The folder of a model in the gallery: a catalog name, or a run folder's name."""
    return Path(str(name).rstrip("/")).name


def gallery_problem(folder: Path) -> str | None:
    """Why ``folder`` is not wholly a gallery zoo wrote, in a few words; None when it is."""
    try:
        document = json.loads((folder / GALLERY_MANIFEST).read_text(encoding="utf-8"))
        listed = {entry["path"]: entry for entry in document["files"]}
        models = {entry["folder"] for entry in document["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {GALLERY_MANIFEST}"
    if document.get("format") != GALLERY_FORMAT:
        return f"{GALLERY_MANIFEST} is not a {GALLERY_FORMAT} document"
    for path in sorted(folder.iterdir()):
        if path.name == GALLERY_MANIFEST:
            continue
        if path.is_symlink():
            return f"{path.name} is a link, which zoo never writes"
        if path.name in models and path.is_dir():
            problem = ownership_problem(path)
            if problem:
                return f"{path.name}: {problem}"
        elif path.name in listed and path.is_file():
            record = listed[path.name]
            if path.stat().st_size != record["size"] or sha256_of(path) != record["sha256"]:
                return f"{path.name} differs from the file zoo wrote"
        else:
            return f"{path.name} is not listed in its {GALLERY_MANIFEST}"
    return None


def check_gallery_target(out: Path) -> None:
    """``out`` may be new, empty or a gallery zoo wrote; anything else is refused."""
    if out.is_symlink():
        raise ExportError(f"{out}: is a link; give the folder itself as --out")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    problem = gallery_problem(out)
    if problem:
        raise ExportError(
            f"{out}: exists and is not a zoo gallery ({problem}); choose another --out"
        )


def gallery_page(models: list) -> str:
    """The gallery's index.html: a link to each model's page."""
    items = []
    for model in models:
        metrics = ", ".join(
            f"{label} {value:.3f}" if isinstance(value, float) else f"{label} {value}"
            for label, value in model["metrics"].items()
        )
        items.append(
            f'<li><a href="{html.escape(model["folder"])}/"><strong>{html.escape(model["name"])}'
            f"</strong><br>{html.escape(model['task'].replace('_', ' '))}"
            f"{' · ' + html.escape(metrics) if metrics else ''}</a></li>"
        )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>zoo models</title>\n"
        '<link rel="stylesheet" href="style.css">\n'
        '<link rel="icon" href="icon.svg" type="image/svg+xml">\n'
        "</head>\n<body>\n<header><h1>zoo models</h1>"
        "<p>Each runs in this browser with LiteRT.js, offline after its first visit.</p></header>\n"
        f'<main><ul class="gallery">\n{chr(10).join(items)}\n</ul></main>\n</body>\n</html>\n'
    )
