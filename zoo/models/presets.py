"""Loading like keras-hub: a trained zoo model by name (``from_preset``), and what it was
loaded with (``preset``), which its ``generate`` and ``translate`` read.

>>> model = LanguageModel.from_preset("lm-lstm-timemachine")  # doctest: +SKIP
>>> model.generate("time traveller", length=20, greedy=True)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError


@dataclass(frozen=True)
class Preset:
    """What a model was loaded from by ``zoo.load``: the ``name`` (a catalog name or a
    path) it was loaded as, the run or work ``path`` that holds its files, its resolved
    ``recipe``, its ``task`` (``zoo.tasks.Task``) and its ``vocabularies`` (file name →
    ``zoo.text.vocab.Vocab``, the task's artifacts)."""

    name: str
    path: Path
    recipe: dict
    task: Any
    vocabularies: dict
    # decoding sessions made once per model (their tf.functions trace once)
    sessions: dict = field(default_factory=dict, compare=False, repr=False)


class PresetModel:
    """A mixin of zoo's Keras models: ``from_preset`` and the ``preset`` they were
    loaded with (``None`` for a model built in Python)."""

    preset: Preset | None = None

    @classmethod
    def from_preset(cls, name_or_path):
        """The trained model ``name_or_path`` (``zoo models list``, a run directory or a
        model folder), verified and loaded with ``safe_mode=True``; refused when it is
        not a ``cls``."""
        from zoo.pretrained.pretrained_model import load_trained

        model = load_trained(name_or_path)
        if not isinstance(model, cls):
            raise ZooError(f"{name_or_path}: a {type(model).__name__}, not a {cls.__name__}")
        return model

    def session(self, action: str, make):
        """The decoding session ``make(preset)`` of this model for ``action``, made once."""
        if self.preset is None:
            raise ZooError(
                f"{type(self).__name__}.{action} needs the vocabularies the model was "
                f"trained with: load it with zoo.load(name) or "
                f"{type(self).__name__}.from_preset(name)"
            )
        if action not in self.preset.sessions:
            self.preset.sessions[action] = make(self.preset)
        return self.preset.sessions[action]
