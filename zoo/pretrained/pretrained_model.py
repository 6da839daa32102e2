"""``zoo.load``: a trained model, by catalog name or run-directory path, ready to use.

>>> model = zoo.load("lm-lstm-timemachine")              # doctest: +SKIP
>>> model.generate("time traveller", length=40, greedy=True)  # doctest: +SKIP

A trained model loads as the Keras model of its task (``zoo.models.LanguageModel``,
``Translator``, ...), verified and loaded with ``safe_mode=True``, with the ``preset``
it was loaded from (``zoo.models.presets.Preset``: recipe, task, vocabularies) that its
``generate`` / ``translate`` read. An export folder loads through its own TF-free
runtime instead (``zoo.export.litert.load_export``).
"""

from __future__ import annotations

from pathlib import Path


def load(name_or_path):
    """A pretrained model by catalog name (``zoo models list``), a run directory or model
    folder by path: its Keras model (``load_trained``); or an export folder
    (``export.json``) or an export-only catalog model, whose TFLite file runs without
    TensorFlow: then what its task's ``export_runtime`` gives (a ``TextGenerator``, a
    ``SentenceTranslator``, ...)."""
    from zoo.pretrained.resolver import export_folder  # a shipped model's export: verified

    folder = export_folder(name_or_path)
    if folder is not None:
        from zoo.export.litert import load_export

        return load_export(folder)
    return load_trained(name_or_path)


def load_trained(name_or_path):
    """The Keras model of a catalog name or run directory, with its ``preset``."""
    from zoo.models.presets import Preset
    from zoo.pipeline import load_run
    from zoo.text.vocab import Vocab

    run, recipe, task, model = load_run(str(name_or_path))
    vocabularies = {
        name: Vocab.load(Path(run.path) / name)
        for name, attribute in task.artifacts.items()
        if attribute is not None
    }
    model.preset = Preset(str(name_or_path), Path(run.path), recipe, task, vocabularies)
    return model
