"""The task contract: everything a recipe's ``task`` means, in one class.

A task owns its recipe sections (beside the common ``name``, ``seed``, ``train`` and
``export``), how its data is prepared and which files of it a run keeps, its model,
loss and metrics, its evaluation, its exporter and export runtime, and what its model
card says. Nothing else in zoo knows a task by name: the pipeline,
the trainer, the pretrained catalog and the exporter ask the task.

A task registers by name, as a layer does, and the built-in tasks register exactly as a
plugin's would::

    from zoo.recipe import Rate, Section, Units, one_layer
    from zoo.registry import register_task
    from zoo.tasks import Task

    class ClassifierModel(Section):  # the recipe's `model` section
        embedding_dim: Units = 32
        encoder: one_layer("sequence")  # required: no default
        dropout: Rate = 0.0

    @register_task
    class SentenceClassification(Task):
        name = "sentence_classifier"
        recipe_sections = {"model": ClassifierModel}
        ...

A task module imports no TensorFlow at import time (``zoo models list`` and ``zoo list
recipes`` read task classes without it); its methods import what they need.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from zoo.errors import ZooError


class TaskActionError(ZooError):
    """A command asks a task for something it does not do (``zoo generate`` on a
    translator): exit 2, one line."""

    exit_code = 2


class Task(abc.ABC):
    """A task: what a recipe with ``task: <name>`` trains, evaluates and exports.

    Class attributes:
        name: the recipe's ``task`` value, and the registry's key.
        recipe_sections: the sections this task adds to a recipe, in their order: each
            one's name (``data``, ``model``, ``evaluate``, ...) → its pydantic model, a
            subclass of ``zoo.recipe.Section`` (unknown keys and values of another type
            are refused: "3" is no integer, true no number). Each field has its type,
            default and range: ``zoo.recipe``'s ``Units``, ``Rate``, ``Source``, ...,
            ``Annotated[int, Field(ge=..., le=...)]``, ``Literal`` choices, ``| None``
            where null is allowed; a section inside a section is ``= section()``; layers
            are ``layer_list(role)``, ``one_layer(role)`` or ``layer_name(role)``. A
            section named like a common one (``export``) replaces it in its place:
            subclass ``zoo.recipe.ExportSection`` to add to it. ``zoo.recipe.validate``
            words pydantic's refusals as one-line ``RecipeError``s.
        artifacts: the files a run writes beside ``model.keras`` and ``recipe.yaml``
            (vocabularies), each → the model attribute whose size it must match (or
            ``None``); a pretrained model of the task ships them, and a run's are checked
            against its model when it is loaded.
        card_limitations: what a pretrained model of the task cannot do, for its model
            card.
        export_fields: ``(path, type)`` of every ``export.json`` value the task's
            runtime reads (``export_runtime``), checked before any is used.
        export_tensors: the ``export.json`` paths of the tensor lists of each signature
            the runtime runs, checked against the TFLite file.
        export_schema: the JSON Schema (draft 2020-12) of what this task's
            ``export.json`` holds beyond the common part (``zoo/export/export.schema.json``,
            whose ``$defs`` it may use); every export is checked against both.
        export_scored_vocabularies: ``export.json`` vocabulary key → (signature, output)
            of the TFLite file that scores each of its tokens (a language model's
            logits), so that a vocabulary from another export is refused.
        actions: what a trained model of the task does beyond evaluation: ``"generate"``
            (``generator``, ``zoo generate``), ``"translate"`` (``translator``,
            ``zoo translate``).
    """

    name: ClassVar[str]
    recipe_sections: ClassVar[dict[str, Any]] = {}
    artifacts: ClassVar[dict[str, str | None]] = {}
    card_limitations: ClassVar[str] = ""
    export_fields: ClassVar[tuple[tuple[str, Any], ...]] = ()
    export_tensors: ClassVar[tuple[str, ...]] = ()
    export_schema: ClassVar[dict[str, Any]] = {}
    export_scored_vocabularies: ClassVar[dict[str, tuple[str, str]]] = {}
    actions: ClassVar[frozenset[str]] = frozenset()

    # ------------------------------------------------------------------ recipe

    def check_recipe(self, recipe: dict) -> None:
        """Settings of a complete recipe that are valid alone but not together; raises
        ``zoo.recipe.RecipeError`` (one line, starting with the value's path). None
        by default."""
        return None

    # -------------------------------------------------------------------- data

    @abc.abstractmethod
    def prepare(self, recipe: dict, run, seed: int):
        """The task's data for ``recipe``; writes the run's ``artifacts`` the first
        time, and reads them when the run has them (``--resume``, evaluation)."""

    def describe_data(self, recipe: dict) -> dict:
        """What ``zoo data show --recipe`` says of the recipe's data once prepared:
        splits and their sizes, vocabulary sizes, problems found in the files."""
        from zoo.errors import DataError

        raise DataError(f"task {self.name}: zoo data show does not describe its data")

    def warnings(self, recipe: dict, data) -> list[str]:
        """What would cost a user an hour, one line each, said before training."""
        return []

    def pretraining(self, recipe: dict, data):
        """A stage trained before ``train``: ``(stage_recipe, stage_data, description)``,
        or ``None``."""
        return None

    @abc.abstractmethod
    def tokens_per_epoch(self, data) -> int:
        """What an epoch reads, for ``tokens_per_sec`` (tokens, pairs or examples)."""

    @abc.abstractmethod
    def steps_per_epoch(self, data, recipe: dict) -> int:
        """Batches an epoch, about."""

    # ------------------------------------------------------------------- model

    @abc.abstractmethod
    def build_model(self, recipe: dict, data):
        """The recipe's Keras model, built."""

    @abc.abstractmethod
    def loss(self):
        """The Keras loss the model is compiled with."""

    def metrics(self) -> list:
        """Keras metrics reported while training (none by default)."""
        return []

    def training_callbacks(self, model, recipe: dict) -> list:
        """Keras callbacks the task needs while training (none by default)."""
        return []

    # -------------------------------------------------------- results and use

    @abc.abstractmethod
    def evaluate(self, model, data, recipe: dict, run) -> dict:
        """The metrics of a trained model on the recipe's ``evaluate`` splits; extra
        result files go through ``run.result_path``."""

    def evaluate_export(self, runtime, data, recipe: dict) -> dict:
        """The metrics of an exported file on the recipe's ``evaluate`` splits, run by
        ``runtime`` (what ``export_runtime`` gave), as ``evaluate`` measures the Keras
        model; no result files (an export folder is its export's alone)."""
        raise TaskActionError(f"a '{self.name}' export is not evaluated by zoo")

    @abc.abstractmethod
    def exporter(self, model, recipe: dict, run_path, data, beam_width=None):
        """The model's ``zoo.export.exporter.TaskExport``: what its export folder
        holds, for each registered export format."""

    def export_runtime(self, litert_model, manifest: dict, folder):
        """What an export folder of this task loads as without TensorFlow
        (``zoo.export.litert.load_export``): ``litert_model`` is its checked TFLite file
        (``zoo.export.litert.LiteRTModel``), ``manifest`` its checked ``export.json``."""
        raise TaskActionError(f"a '{self.name}' export has no runtime in zoo: use its files")

    def generator(self, model, vocab, recipe: dict):
        """A ``zoo.decoding.TextGenerator`` of the model, for ``zoo generate``."""
        raise TaskActionError(f"a '{self.name}' model does not generate text")

    def translator(self, model, src_vocab, tgt_vocab, recipe: dict):
        """A ``zoo.decoding.SentenceTranslator`` of the model, for ``zoo translate``."""
        raise TaskActionError(f"a '{self.name}' model does not translate")

    def draw_attention(self, model, run_path, recipe: dict, sentence: str, path, **decoding):
        """``zoo translate --attention``: the attention heat map of ``sentence``'s
        translation written to ``path`` → the translation."""
        raise TaskActionError(f"a '{self.name}' model has no attention to draw")

    def headline(self, results: dict, recipe: dict) -> list[str]:
        """The figures a person looks for first in a run's ``results`` (what
        ``evaluate`` returned), a line each, with their split and how they were
        measured: ``test perplexity 6.12 (30,521 tokens, exact per token)``. By default
        the first few numbers."""
        numbers = [
            f"{key.replace('_', ' ')} {value:.4g}"
            for key, value in results.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        return [", ".join(numbers[:4])] if numbers else []

    def try_next(self, run_path, recipe: dict) -> list[str]:
        """Commands a person can run next with the finished run in the folder
        ``run_path``, most useful first, quoted for a shell (``shlex.quote``); the
        end-of-run summary shows a few."""
        import shlex

        run = shlex.quote(str(run_path))
        return [f"zoo export {run} --format tflite", f"zoo evaluate {run}"]

    def tiny_overrides(self, folder) -> list[str]:
        """``--set`` overrides that make any recipe of this task train, evaluate and
        export in seconds, on small data the task writes into ``folder`` (the contract
        tests run every shipped recipe with them, as timm tests every model at a small
        input size). None by default: the task's data is small already."""
        return []

    def card_samples(self, folder, metrics: dict) -> list[str]:
        """Markdown lines of a pretrained model's card that show what the model in
        the finished run ``folder`` does (its ``metrics.json`` is ``metrics``)."""
        return ["See the metrics above."]
