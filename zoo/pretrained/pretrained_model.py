"""``zoo.load``: a trained model, by catalog name or run-directory path, ready to use.

>>> model = zoo.load("lm-lstm-timemachine")              # doctest: +SKIP
>>> model.generate("time traveller", length=40, greedy=True)  # doctest: +SKIP

A thin handle over ``zoo.pipeline``: the model is loaded (``safe_mode=True``) and
verified once; generation, translation and evaluation are the pipeline's.
"""

from __future__ import annotations

from pathlib import Path


class PretrainedModel:
    """A loaded model. ``model``: the Keras model; ``recipe``: its resolved recipe;
    ``name``: what it was loaded as; ``path``: the run directory, or for a catalog model
    the folder of ``$ZOO_HOME/work`` holding its verified small files."""

    def __init__(self, name: str, run, recipe: dict, task, model):
        self.name, self.recipe, self.task, self.model = name, recipe, task, model
        self.path = Path(run.path)

    def evaluate(self, split: str | None = None, beam: int | None = None, alpha=None) -> dict:
        """The metrics on ``split`` (default: the recipe's), as ``zoo evaluate`` gives them."""
        from zoo.pipeline import evaluate_run

        return evaluate_run(self.name, (split,) if split else None, beam, alpha)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.recipe['task']} {self.recipe['name']}>"


class LoadedLanguageModel(PretrainedModel):
    """A loaded language model; ``vocab`` is its vocabulary."""

    def __init__(self, *loaded):
        from zoo.text.vocab import Vocab

        super().__init__(*loaded)
        self.vocab = Vocab.load(self.path / "vocab.txt")
        self._generator = self.task.generator(self.model, self.vocab, self.recipe)

    def generate(
        self,
        prefix: str,
        length: int = 50,
        temperature: float = 1.0,
        greedy: bool = False,
        seed: int | None = None,
    ) -> str:
        """``prefix`` continued by ``length`` tokens (sampled at ``temperature``, or the
        most likely ones with ``greedy``)."""
        return self._generator.generate(prefix, length, temperature, greedy, seed)


class LoadedTranslator(PretrainedModel):
    """A loaded translator; ``src_vocab`` and ``tgt_vocab`` are its vocabularies."""

    def __init__(self, *loaded):
        from zoo.text.vocab import Vocab

        super().__init__(*loaded)
        self.src_vocab = Vocab.load(self.path / "src_vocab.txt")
        self.tgt_vocab = Vocab.load(self.path / "tgt_vocab.txt")
        self._translator = self.task.translator(
            self.model, self.src_vocab, self.tgt_vocab, self.recipe
        )

    def translate(self, sentences, beam: int | None = None, alpha: float | None = None):
        """The translation of one sentence (a string) or of each of a list of them, with
        beam width ``beam`` and length penalty ``alpha`` (default: the recipe's)."""
        if isinstance(sentences, str):
            return self._translator.translate([sentences], beam, alpha)[0]
        return self._translator.translate(list(sentences), beam, alpha)


def load(name_or_path):
    """A pretrained model by catalog name (``zoo models list``), a run directory or model
    folder by path, verified (sha256 of every file) and loaded with ``safe_mode=True``;
    or an export folder (``export.json``), whose TFLite file runs without TensorFlow:
    then the ``TextGenerator`` or ``SentenceTranslator`` of ``zoo.export.litert``."""
    from zoo.export.manifest import is_export

    if is_export(name_or_path):
        from zoo.export.litert import load_export
        from zoo.pretrained.resolver import resolve_model  # a shipped model's export: verified

        return load_export(resolve_model(name_or_path).path)
    from zoo.pipeline import _load_run

    run, recipe, task, model = _load_run(str(name_or_path))
    return task.loaded_model(str(name_or_path), run, recipe, model)
