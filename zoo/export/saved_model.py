"""SavedModel export with named signatures."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras


def export_saved_model(model: keras.Model, path: Path, endpoints: dict, assets: tuple = ()) -> Path:
    """Writes ``model`` as a SavedModel whose signatures are ``endpoints``
    (name → (function, input_signature)), and copies ``assets`` (vocab, recipe)
    beside it so the export travels with what it needs to be used.

    Writes into a temporary folder renamed at the end: an interrupted export leaves
    no half-written SavedModel behind.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    archive.write_out(str(temporary), verbose=False)
    for asset in assets:
        shutil.copy(asset, temporary / Path(asset).name)
    shutil.rmtree(path, ignore_errors=True)
    temporary.rename(path)
    return path
