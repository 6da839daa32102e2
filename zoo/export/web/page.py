"""``zoo export --format web``: the export folder as a static web page of its model.

Beside the other formats' files the folder gets:

    index.html, app.js, contract.js, style.css, icon.svg    the page (plain JS modules)
    manifest.webmanifest, sw.js                              installable, offline after a visit
    litert/                                                  LiteRT.js and its WebAssembly
    model.tflite                                             the float file, which the page runs

and ``export.json`` a ``web`` section: the page, its TFLite file, the runtime and what the
page shows of the model (name, test metrics). ``contract.js`` does in JavaScript what
export.json states (cleaning, tokens, beam search), so the page answers as ``zoo
translate`` and ``zoo generate`` do. Any static file server serves the folder
(``zoo serve`` is one); like every export it is written whole or not at all, and listed
file by file in export.json.
"""

from __future__ import annotations

import json
import numbers
import shutil
from pathlib import Path

from zoo.export.formats import TFLiteFormat, tflite_name
from zoo.export.manifest import ExportError
from zoo.export.web.runtime import copy_runtime

PAGE = Path(__file__).parent / "page"
PAGE_FILES = ("index.html", "app.js", "contract.js", "style.css", "sw.js", "icon.svg")
# metrics.json's entries that say how good the model is (not how fast it trained), of
# the test split and the validation split (val_...), not the training data (train_...)
QUALITY_WORDS = ("perplexity", "bleu", "accuracy", "loss")


def write_web(task_export, folder: Path, quantizations) -> dict:
    """Writes the page of ``task_export`` into the export ``folder``; returns its
    ``export.json`` entries (and the TFLite format's when the float file was not there
    yet: the page runs it)."""
    check_runs_on_the_page(task_export)
    entries = {}
    float_file = folder / tflite_name("none")
    if not float_file.is_file():
        entries = TFLiteFormat().write(task_export, folder, quantizations)
    for name in PAGE_FILES:
        shutil.copyfile(PAGE / name, folder / name)
    name = model_name(task_export)
    web_manifest = {
        "name": f"{name} · zoo",
        "short_name": name[:12],
        "start_url": "./",
        "scope": "./",
        "display": "standalone",
        "background_color": "#fafafa",
        "theme_color": "#1f3a5f",
        "icons": [{"src": "icon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }
    (folder / "manifest.webmanifest").write_text(
        json.dumps(web_manifest, indent=2) + "\n", encoding="utf-8"
    )
    entries["web"] = {
        "page": "index.html",
        "tflite": float_file.name,
        "size": float_file.stat().st_size,
        "runtime": copy_runtime(folder),
        "model": {"name": name, "metrics": quality_metrics(task_export.run_path)},
    }
    return entries


def check_runs_on_the_page(task_export) -> None:
    """contract.js runs language models and translators whose text is cut at whitespace
    or into characters; anything else is refused before a file is written."""
    from zoo.export.litert import LiteRTLanguageModel, LiteRTTranslator

    # the page decodes as these two LiteRT backends do, and only so
    if task_export.litert_class not in (LiteRTLanguageModel, LiteRTTranslator):
        raise ExportError(
            "--format web: the page runs language models and translators, "
            f"not {task_export.recipe['task']} models"
        )
    tokenizer = task_export.manifest()["text"].get("tokenizer")
    if tokenizer is not None:
        raise ExportError(
            "--format web: the page cuts text at whitespace or into characters; "
            f"this model's text.tokenizer is {tokenizer}"
        )


def model_name(task_export) -> str:
    """A catalog model's name (its work folder is named after it), else the recipe's
    name and the run folder's."""
    from zoo.pretrained.catalog import zoo_home

    run_path = Path(task_export.run_path)
    if run_path.parent == zoo_home() / "work":
        return run_path.name
    return f"{task_export.recipe['name']} {run_path.name}"


def quality_metrics(run_path: Path) -> dict:
    """The quality figures of the run's ``metrics.json`` as the page shows them, by
    split ("test perplexity", "validation perplexity"); none when it has none."""
    path = Path(run_path) / "metrics.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text(encoding="utf-8"))
    split = metrics.get("split", "test")  # a translator's; a language model's is test
    shown = {}
    for key, value in metrics.items():
        if (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and any(word in key for word in QUALITY_WORDS)
            and not key.startswith("train")
        ):
            label = f"validation {key[4:]}" if key.startswith("val_") else f"{split} {key}"
            shown[label.replace("_", " ")] = value
    return shown
