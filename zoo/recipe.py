"""Recipes: YAML files that name a task, its data, a model assembled from registered
layers, training, evaluation and export. Recipes are data; this module finds, checks
(each section is a pydantic model, ``Section``; a task contributes its own), overrides
and fingerprints them.

Every problem is reported as one ``RecipeError`` line that starts with the path of
the offending value, for example ``model.layers[1].units: expected an integer, got 'abc'``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from zoo import documents, registry
from zoo.documents import MAX_DOCUMENT_BYTES, MAX_DOCUMENT_VALUES
from zoo.errors import ZooError, one_line
from zoo.export.formats import QUANTIZATIONS
from zoo.limits import (
    MAX_BATCH_SIZE,
    MAX_BATCH_TOKENS,
    MAX_CLIP_NORM,
    MAX_CONNECT_TIMEOUT,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_LEARNING_RATE,
    MAX_MIN_FREQ,
    MAX_SEED,
    MAX_UNITS,
    MAX_WEIGHT_DECAY,
    MAX_WORKERS,
)
from zoo.training.distribute import DISTRIBUTE

# Inside the package, so that a wheel ships them; the clone's top-level recipes/ links here.
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"

# Bounds on a recipe, checked before anything else reads it (zoo.documents says why).
MAX_RECIPE_BYTES = MAX_DOCUMENT_BYTES
MAX_RECIPE_VALUES = MAX_DOCUMENT_VALUES


class RecipeError(ZooError):
    """A recipe that cannot be used; the message is one line and starts with a path."""


# ----------------------------------------------------------------------------- schema

# A recipe's values are what YAML wrote: "3" is not an integer, true is not a number, and
# .nan is no learning rate.
STRICT = ConfigDict(strict=True, allow_inf_nan=False)

# Ranges shared by several sections. Every number of every section has one: a test walks
# the models to make sure (tests/test_recipe_ranges.py).
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]  # dropout: the share of values dropped
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
LearningRate = Annotated[float, Field(ge=0.0, le=MAX_LEARNING_RATE)]
Units = Annotated[int, Field(ge=1, le=MAX_UNITS)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]
MinFreq = Annotated[int, Field(ge=0, le=MAX_MIN_FREQ)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _refusal(message: str) -> PydanticCustomError:
    """A refusal by one of zoo's own checks. Its message is relative to the path of the
    value checked, which pydantic knows: ``: expected ...``, ``.units: ...``,
    ``[0].units: ...``."""
    return PydanticCustomError("recipe", "{message}", {"message": message})


def _checked_by(check: Callable[[Any], Any]) -> Callable[[Any, ValidationInfo], Any]:
    """A pydantic validator that runs ``check``, which raises ``RecipeError`` with a path
    relative to the value. Once a value before it is refused it is skipped: only the first
    refusal is reported, and checking a layer builds it, importing TensorFlow, which a
    recipe refused for its ``train`` section need not wait for."""

    def validator(value: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("refused"):
            return value
        try:
            return check(value)
        except RecipeError as error:
            raise _refusal(str(error)) from None

    return validator


class Section(BaseModel):
    """A recipe section: a pydantic model of its values, each with its type, default and
    range (``Units``, ``Rate``, ... or ``Annotated[int, Field(ge=..., le=...)]``). A key
    it does not have is refused, and so is a value of another type; a section left out,
    or left empty, has its defaults."""

    model_config = ConfigDict(extra="forbid", **STRICT)

    @model_validator(mode="before")
    @classmethod
    def refuse_unknown_keys_first(cls, section: Any) -> Any:
        # pydantic finds extra keys after it has checked the known ones; an unknown key is
        # most often a typo, said first, with the key it likely means
        if section is None:
            return {}
        if isinstance(section, dict):
            for key in section:
                if key not in cls.model_fields:
                    close = difflib.get_close_matches(str(key), cls.model_fields, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    known = ", ".join(cls.model_fields)
                    raise _refusal(f".{key}: unknown key{hint} (expected: {known})")
        return section

    @field_validator("*", mode="wrap")
    @classmethod
    def note_refusals(cls, value: Any, handler: Callable, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            if info.context is not None:  # what _checked_by skips after
                info.context["refused"] = True
            raise


def section() -> Any:
    """The place of a section in a recipe (or in another section): left out, it is ``{}``
    validated, so that a required value in it is refused by its path
    (``model.layers: required``)."""
    return Field(default_factory=dict, validate_default=True)


def _describe(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:100]


def _source(value: Any) -> Any:
    three_files = (
        isinstance(value, dict)
        and set(value) == {"train", "validation", "test"}
        and all(isinstance(path, str) and path for path in value.values())
    )
    if not (isinstance(value, str) or three_files):
        raise RecipeError(
            ": expected a dataset name, a file path, or {train: PATH, validation: PATH, "
            f"test: PATH}}, got {_describe(value)}"
        )
    return value


# A dataset name, a file path, or a corpus in three files: {train: PATH, validation: PATH,
# test: PATH}.
Source = Annotated[str | dict[str, str], PlainValidator(_checked_by(_source))]


def _export_format(value: Any) -> Any:
    names = registry.exporters.names()  # read now: plugins' formats included
    if value not in names:
        raise RecipeError(f": expected one of {', '.join(names)}, got {value!r}")
    return value


ExportFormat = Annotated[str, PlainValidator(_checked_by(_export_format))]


def layer_list(role: str) -> Any:
    """The type of a model's list of layers (``[{name: gru, units: 256}, ...]``): at least
    one and at most ``MAX_LAYERS``, each a registered layer that can fill ``role``
    (``LAYER_ROLES``), with its arguments."""

    def check_each(specs: list) -> list:
        return [_check_layer(f"[{index}]", spec, role) for index, spec in enumerate(specs)]

    return Annotated[
        list[Any],
        Field(max_length=MAX_LAYERS),  # checked before any layer is built
        BeforeValidator(_checked_by(_a_list_of_layers)),
        AfterValidator(_checked_by(check_each)),
    ]


def _a_list_of_layers(value: Any) -> list:
    if not isinstance(value, list):
        raise RecipeError(f": expected a list of layers, got {_describe(value)}")
    if not value:
        raise RecipeError(": needs at least one layer")
    return value


def one_layer(role: str) -> Any:
    """The type of one layer of a model (``{name: gru, units: 256}``): a registered layer
    that can fill ``role`` (``LAYER_ROLES``), with its arguments."""

    def check(spec: Any) -> dict:
        if not isinstance(spec, dict):
            raise RecipeError(
                f": expected a layer (a mapping with a 'name' key), got {_describe(spec)}"
            )
        return _check_layer("", spec, role)

    return Annotated[dict, PlainValidator(_checked_by(check))]


def layer_name(role: str) -> Any:
    """The type of a registered layer's name, of a layer that can fill ``role``
    (``LAYER_ROLES``): a translator's decoder cell."""

    def check(name: str) -> str:
        return _check_layer_name("", name, role)

    return Annotated[str, AfterValidator(_checked_by(check))]


class TrainSection(Section):
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: LearningRate = 0.001
    epochs: Epochs = 10
    clip_norm: Annotated[float, Field(ge=0.0, le=MAX_CLIP_NORM)] | None = 1.0
    weight_decay: Annotated[float, Field(ge=0.0, le=MAX_WEIGHT_DECAY)] = 0.0
    patience: Epochs | None = None
    # constant; a cosine decay from learning_rate to min_learning_rate over all epochs;
    # or plateau: the rate divided by plateau_factor (not below min_learning_rate) each
    # time validation loss has not improved for plateau_patience epochs (Zaremba et al.'s
    # and PyTorch's word_language_model's step decay; kept in state.json for --resume)
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    min_learning_rate: LearningRate = 0.0
    plateau_factor: Annotated[float, Field(ge=1.0, le=1000.0)] = 4.0
    plateau_patience: Epochs = 1
    # Polyak averaging: an exponential moving average of the weights with this momentum
    # is what validation measures, what best.keras keeps and what the run delivers
    weight_averaging: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    # adam, adamw: ε added to the bias-corrected √v̂, as PyTorch adds it (1e-8 there);
    # rmsprop: its ε; null: Keras' (1e-7, added to √v before the bias correction, which
    # slows rare words' embeddings early on: zoo.training.optimizers). sgd has none.
    epsilon: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    # data-parallel training (zoo.training.distribute): none; mirrored over this
    # machine's devices (`replicas` CPU devices without a GPU); multi_worker from
    # TF_CONFIG, or `zoo run recipe NAME --workers N`. data.batch_size is the global batch.
    distribute: Literal[DISTRIBUTE] = "none"
    replicas: Annotated[int, Field(ge=1, le=MAX_WORKERS)] = 2
    # seconds a worker waits for the others to join at the start; a peer that stops
    # answering later is found by the coordination service's heartbeat within
    # zoo.training.distribute.PEER_TIMEOUT_SECONDS
    connect_timeout: Annotated[float, Field(ge=1.0, le=MAX_CONNECT_TIMEOUT)] = 300.0


# What `zoo run recipe` exports at the end (`zoo export` makes any of them later):
# a SavedModel, and TFLite files, float and each quantization listed
# (zoo.export.formats.QUANTIZATIONS).


class ExportSection(Section):
    # the registered export formats (zoo.export.formats, and plugins')
    formats: Annotated[list[ExportFormat], Field(max_length=16)] = ["saved_model"]
    quantize: Annotated[list[Literal[QUANTIZATIONS]], Field(max_length=len(QUANTIZATIONS))] = [
        "dynamic"
    ]


# A recipe's name names its folder under runs/: a plain slug, never a path.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class Recipe(Section):
    """What every recipe holds; its task adds its own sections (``Task.recipe_sections``)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    task: str
    seed: Seed = 0
    train: TrainSection = section()
    export: ExportSection = section()


def task_of(recipe: dict):
    """The registered ``zoo.tasks.Task`` a recipe names."""
    task = recipe.get("task")
    known = registry.tasks.names()
    if not isinstance(task, str) or task not in known:
        close = difflib.get_close_matches(str(task), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise RecipeError(f"task: unknown task {task!r}{hint} (known: {', '.join(known)})")
    return registry.tasks.get(task)


@functools.cache
def recipe_model(task_class: type) -> type[Recipe]:
    """The model of a recipe of a task: ``Recipe`` and the task's ``recipe_sections`` in
    their order; a section named like a common one (``export``) replaces it in its place."""
    sections = {name: (model, section()) for name, model in task_class.recipe_sections.items()}
    return create_model(f"{task_class.__name__}Recipe", __base__=Recipe, **sections)


# ----------------------------------------------------------------------------- layers


def layer_arguments(layer_class) -> dict[str, inspect.Parameter]:
    """The keyword arguments a registered layer takes: its own, and for sequence
    layers those of their cell."""
    parameters: dict[str, inspect.Parameter] = {}
    classes = list(layer_class.__mro__)
    cell_class = getattr(layer_class, "cell_class", None)
    if cell_class is not None:
        classes += list(cell_class.__mro__)
    for klass in classes:
        # Keras' own base classes take only name, dtype, trainable, ...: not recipe material.
        if "__init__" in vars(klass) and not klass.__module__.startswith("keras"):
            for name, parameter in inspect.signature(klass.__init__).parameters.items():
                if (
                    name not in ("self", "kwargs")
                    and parameter.kind is not parameter.VAR_POSITIONAL
                ):
                    parameters.setdefault(name, parameter)
    return parameters


# The types of the arguments of zoo's layers that are not a string or a flag, by name:
# each means the same in every layer that takes it. A plugin layer's other arguments are
# checked by the type of their default, and by the layer itself when built aside.
LAYER_ARGUMENTS = {
    "units": Units,
    "num_layers": Annotated[int, Field(ge=1, le=MAX_LAYERS)],
    "hidden_units": Annotated[list[Units], Field(min_length=1, max_length=MAX_LAYERS)],
    "dropout": Rate,
    "recurrent_dropout": Rate,
    "weight_dropout": Rate,
    "seed": Seed | None,
    # the keyword arguments of each layer a deep_rnn stacks or a bidirectional pairs
    "layer_kwargs": dict | None,
}


def _is_sequence_layer(layer_class) -> bool:
    from zoo.layers.sequence_layer import SequenceLayer

    return issubclass(layer_class, SequenceLayer)


def _is_stepping_layer(layer_class) -> bool:
    from zoo.layers.sequence_layer import SequenceLayer

    return _is_sequence_layer(layer_class) and layer_class.step is not SequenceLayer.step


def _is_attention_layer(layer_class) -> bool:
    return hasattr(layer_class, "project_keys") and hasattr(layer_class, "attend")


def _is_cell(layer_class) -> bool:
    from zoo.layers.recurrent_cell import RecurrentCell

    return issubclass(layer_class, RecurrentCell)


def _reads_features(layer_class) -> bool:
    from zoo.layers.recurrent_cell import RecurrentCell

    return not (
        _is_sequence_layer(layer_class)
        or issubclass(layer_class, RecurrentCell)
        or _is_attention_layer(layer_class)
    )


# What a layer must be to fill a place of a model, which calls it its own way:
# role → (what it is, the test of a layer class).
LAYER_ROLES = {
    "sequence": ("a sequence layer (rnn, gru, lstm, deep_rnn, bidirectional)", _is_sequence_layer),
    # a language model generates one token at a time: a bidirectional layer cannot
    "stepping": (
        "a sequence layer that runs step by step (rnn, gru, lstm, deep_rnn)",
        _is_stepping_layer,
    ),
    "attention": ("an attention layer (additive_attention)", _is_attention_layer),
    "cell": ("a recurrent cell (rnn_cell, gru_cell, lstm_cell)", _is_cell),
    "features": (
        "a layer of feature vectors (mlp), not a sequence, cell or attention layer",
        _reads_features,
    ),
}


def _check_layer(path: str, spec: Any, role: str) -> dict:
    if not isinstance(spec, dict):
        raise RecipeError(f"{path}: expected a mapping with a 'name' key, got {_describe(spec)}")
    if "name" not in spec:
        raise RecipeError(f"{path}.name: required (a registered layer name)")
    name = _check_layer_name(f"{path}.name", spec["name"], role)
    arguments = layer_arguments(registry.layers.get(name))
    arguments_given = {key: value for key, value in spec.items() if key != "name"}
    _check_arguments(path, name, arguments, arguments_given, role)
    missing = [
        argument
        for argument, parameter in arguments.items()
        if parameter.default is inspect.Parameter.empty and argument not in spec
    ]
    if missing:
        raise RecipeError(f"{path}.{missing[0]}: required by layer '{name}'")
    try:  # the layer's own checks of its values (activations, initializers, ...)
        _build_aside(spec)
    except (ValueError, TypeError, LookupError) as error:
        raise RecipeError(f"{path}: {one_line(error)}") from None
    return dict(spec)


def _check_layer_name(path: str, name: Any, role: str) -> str:
    """A registered layer's name, of a layer that can fill ``role``."""
    if not isinstance(name, str):
        raise RecipeError(f"{path}: expected a string, got {_describe(name)}")
    try:
        layer_class = registry.layers.get(name)
    except registry.RegistryError as error:
        raise RecipeError(f"{path}: {error}") from None
    what, fits = LAYER_ROLES[role]
    if not fits(layer_class):
        raise RecipeError(f"{path}: expected {what}, got '{name}'")
    return name


def _check_arguments(path: str, name: str, arguments: dict, spec: dict, role: str) -> None:
    """Each argument of ``spec`` (a layer entry, or the ``layer_kwargs`` of one) is one
    that layer ``name`` takes, of the right type and in range; the layer it stacks or
    pairs (``layer``) fills ``role`` too, as a sequence layer at least."""
    for key, value in spec.items():
        if key not in arguments:
            close = difflib.get_close_matches(str(key), arguments, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RecipeError(f"{path}.{key}: layer '{name}' has no argument '{key}'{hint}")
        argument_type = _argument_type(key, arguments[key])
        if argument_type is not None:
            _check_argument(f"{path}.{key}", argument_type, value)
    inner_role = "stepping" if role == "stepping" else "sequence"
    if "layer" in spec:  # the layer a deep_rnn stacks or a bidirectional pairs
        _check_layer_name(f"{path}.layer", spec["layer"], inner_role)
    if spec.get("layer_kwargs") and "layer" in arguments:
        inner = spec.get("layer", arguments["layer"].default)
        inner_arguments = layer_arguments(registry.layers.get(inner))
        _check_arguments(
            f"{path}.layer_kwargs", inner, inner_arguments, spec["layer_kwargs"], inner_role
        )


def _argument_type(name: str, parameter: inspect.Parameter) -> Any:
    """The type of a layer's argument: ``LAYER_ARGUMENTS``' for zoo's, else that of its
    default when it is a flag, a number or a string (a plugin's numbers are then ranged by
    the plugin's own layer); ``None``: anything the layer takes."""
    default_type = type(parameter.default)
    return LAYER_ARGUMENTS.get(name) or (
        default_type if default_type in (bool, int, float, str) else None
    )


@functools.cache
def _adapter(argument_type: Any) -> TypeAdapter:
    return TypeAdapter(argument_type, config=STRICT)


def _check_argument(path: str, argument_type: Any, value: Any) -> None:
    try:
        _adapter(argument_type).validate_python(value)
    except ValidationError as error:
        raise RecipeError(_message(error.errors()[0], argument_type, path)) from None


def _build_aside(spec: dict) -> None:
    """Builds a layer to let it check its arguments, in a graph of its own: the variables
    it makes (a dropout's seed) then do not start TensorFlow's runtime, which a
    multi-worker run must configure first (``zoo.training.distribute``)."""
    import tensorflow as tf

    with tf.Graph().as_default():
        registry.build_layer(spec)


# ------------------------------------------------------------------------- validation

# What a value should have been, by the type of pydantic's refusal.
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping",  # a section
    "dict_type": "a mapping of a layer's arguments",  # the one other mapping: layer_kwargs
}
_RANGES = {
    "greater_than_equal": ("must be at least", "ge"),
    "greater_than": ("must be above", "gt"),
    "less_than_equal": ("must be at most", "le"),
    "less_than": ("must be below", "lt"),
}
_PATTERNS = {
    NAME_PATTERN: "a plain name (letters, digits, '.', '_', '-'; not starting with '.' or '-')"
}


def _message(error: dict, annotation: Any, path: str = "") -> str:
    """The one line that says pydantic's ``error`` of a value of ``annotation`` (a model,
    or a type) at ``path``: the path of the offending value, then what is wrong with it."""
    loc = list(error["loc"])
    where = path_string(loc, path)
    kind, value, context = error["type"], error["input"], error.get("ctx", {})
    if kind == "recipe":
        return f"{where}{context['message']}".removeprefix(".")
    value_type = _bare(_annotation_at(annotation, loc))
    if kind in _EXPECTED:
        text = f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    elif kind == "missing":
        text = "required"
    elif kind == "finite_number":
        text = f"expected a finite number, got {value!r}"
    elif kind in _RANGES:
        words, bound = _RANGES[kind]
        number = float(value) if value_type is float else value  # as it was compared
        text = f"{words} {context[bound]}, got {number!r}"
    elif kind == "literal_error" and (isinstance(value, str) or loc and isinstance(loc[-1], int)):
        text = f"expected one of {', '.join(map(str, get_args(value_type)))}, got {value!r}"
    elif kind == "literal_error":  # a choice of names is a string first; a list's items
        text = f"expected a string, got {_describe(value)}"  # need only be one of them
    elif kind == "too_short":
        text = f"needs at least {context['min_length']}, got {context['actual_length']}"
    elif kind == "too_long":
        text = f"may hold at most {context['max_length']}, got {context['actual_length']}"
    elif kind == "string_pattern_mismatch":
        wanted = _PATTERNS.get(context["pattern"], f"a string matching {context['pattern']}")
        text = f"expected {wanted}, got {value[:100]!r}"
    else:  # a constraint of a plugin's section that zoo's do not use: pydantic's words
        text = " ".join(error["msg"].split())
    return f"{where}: {text}"


def _annotation_at(annotation: Any, loc: list) -> Any:
    """The type of the value at ``loc`` in a value of ``annotation``: a section's field,
    a list's item (``Any`` where it cannot say)."""
    for part in loc:
        value_type = _bare(annotation)
        if isinstance(part, int) and get_origin(value_type) is list:
            (annotation,) = get_args(value_type)
        elif isinstance(value_type, type) and issubclass(value_type, BaseModel):
            annotation = value_type.model_fields[part].annotation
        else:
            return Any
    return annotation


def _bare(annotation: Any) -> Any:
    """``annotation`` without its ``Annotated`` metadata, and without ``| None``."""
    while True:
        origin, arguments = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            annotation = arguments[0]
        elif origin in (Union, UnionType) and len(arguments) == 2 and type(None) in arguments:
            annotation = next(arg for arg in arguments if arg is not type(None))
        else:
            return annotation


def validate(recipe: Any) -> dict:
    """Checks a recipe and returns it complete, every default filled in."""
    if not isinstance(recipe, dict):
        raise RecipeError(f"recipe: expected a mapping at the top level, got {_describe(recipe)}")
    model = recipe_model(type(task_of(recipe)))
    try:
        checked = model.model_validate(recipe, context={})
    except ValidationError as error:
        raise RecipeError(_message(error.errors()[0], model)) from None
    resolved = checked.model_dump()
    _check_together(resolved)
    return resolved


def _check_together(recipe: dict) -> None:
    """Settings that are valid alone but not with each other: each would fail only once
    data is read, a model is built or training is over. Those of one task's sections
    are the task's own (``Task.check_recipe``)."""
    data = recipe.get("data", {})
    if data.get("line_ends") == "eos" and data.get("preprocess") == "chapter":
        raise RecipeError(
            "data.line_ends: eos keeps line ends, which data.preprocess chapter turns into "
            "spaces; set data.preprocess to lower or none"
        )
    train = recipe.get("train", {})
    if train.get("optimizer") == "sgd" and train.get("epsilon") is not None:
        raise RecipeError("train.epsilon: train.optimizer sgd has no epsilon; set it to null")
    if "num_steps" in data:
        check_product(
            "data.batch_size",
            data["batch_size"],
            "data.num_steps",
            data["num_steps"],
            MAX_BATCH_TOKENS,
            "tokens a batch",
        )
    task_of(recipe).check_recipe(recipe)


def check_product(path, value, other_path, other, most, what) -> None:
    """Two values that are each in range but together ask for too much memory or time."""
    if value * other > most:
        raise RecipeError(
            f"{path}: {value:,} × {other_path} {other:,} is {value * other:,} {what}; "
            f"at most {most:,} (lower either)"
        )


# --------------------------------------------------------------------- finding, loading


def builtin_recipe_paths() -> dict[str, Path]:
    paths = {path.stem: path for path in sorted(RECIPES_DIR.glob("*.yaml"))}
    for entry in registry.recipes.entries():
        paths.setdefault(entry.name, Path(entry.obj))
    return paths


def recipe_table() -> list[dict[str, str]]:
    """Rows of ``zoo list recipes``: name, task, description and where it comes from."""
    rows = []
    for name, path in builtin_recipe_paths().items():
        raw = read_yaml(path)
        provider = "zoo" if name not in registry.recipes else registry.recipes.entry(name).provider
        rows.append(
            {
                "name": name,
                "task": str(raw.get("task", "")),
                "description": str(raw.get("description", "")),
                "provider": provider,
            }
        )
    return rows


def read_yaml(path: Path) -> Any:
    """A recipe file's data, within zoo.documents' bounds; one ``RecipeError`` line if not."""
    return documents.read_yaml(path, "recipe", RecipeError, MAX_RECIPE_BYTES, MAX_RECIPE_VALUES)


def find_recipe(name_or_path: str) -> Path:
    """A built-in (or plugin) recipe by name, or a recipe file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file() or "/" in name_or_path:
        if not candidate.is_file():
            raise RecipeError(f"{name_or_path}: no such recipe file")
        return candidate
    paths = builtin_recipe_paths()
    if name_or_path not in paths:
        close = difflib.get_close_matches(name_or_path, paths, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise RecipeError(f"unknown recipe '{name_or_path}'{hint} (known: {', '.join(paths)})")
    return paths[name_or_path]


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_override(recipe: dict, assignment: str) -> None:
    """Applies ``dotted.path[index]=value``; the value is read as YAML (typed)."""
    if "=" not in assignment:
        raise RecipeError(f"--set {assignment}: expected PATH=VALUE, e.g. train.epochs=3")
    path, text = assignment.split("=", 1)
    parts = [key if key else int(index) for key, index in _PATH_PART.findall(path.strip())]
    if not parts:
        raise RecipeError(f"--set {assignment}: empty path")
    try:
        value = yaml.load(text, Loader=documents.DocumentLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, ValueError, RecursionError):  # not YAML: the text itself
        value = text
    documents.check_shape(value, f"--set {path.strip()}", RecipeError)
    data = recipe.get("data")
    if parts[:2] == ["data", "source"] and len(parts) == 3 and isinstance(data, dict):
        if not isinstance(data.get("source"), dict):  # data.source.train=PATH: three files
            data["source"] = {}
    target = recipe
    for depth, part in enumerate(parts[:-1]):
        where = path_string(parts[: depth + 1])
        if isinstance(part, int):
            if not isinstance(target, list) or part >= len(target):
                raise RecipeError(f"--set {assignment}: {where} does not exist")
            target = target[part]
        else:
            if not isinstance(target, dict):
                raise RecipeError(f"--set {assignment}: {where} is not a mapping")
            target = target.setdefault(part, {})
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(target, list) or last >= len(target):
            raise RecipeError(f"--set {assignment}: {path_string(parts)} does not exist")
    elif not isinstance(target, dict):
        raise RecipeError(f"--set {assignment}: {path_string(parts[:-1])} is not a mapping")
    target[last] = value


def path_string(parts: list, start: str = "") -> str:
    """``model.layers[0].units`` of ``["model", "layers", 0, "units"]``, after ``start``."""
    text = start
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_recipe(
    name_or_path: str, overrides: tuple[str, ...] | list[str] = (), source=None
) -> dict:
    """Finds, reads, overrides (``--set``) and validates a recipe; ``source`` (a file
    name or ``{train, validation, test}`` files) replaces its ``data.source`` before the
    defaults that depend on the source are filled in."""
    raw = read_yaml(find_recipe(name_or_path))
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{name_or_path}: expected a mapping at the top level, got {_describe(raw)}"
        )
    for assignment in overrides:
        apply_override(raw, assignment)
    if source is not None:
        raw["data"] = {**(raw.get("data") or {}), "source": source}
    return validate(raw)


def recipe_hash(recipe: dict) -> str:
    """sha256 of the resolved recipe's canonical JSON: its identity in runs and exports."""
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Sections that say how a trained model is evaluated, decoded and exported: changing
# them does not change what training does, so a run resumes across such changes.
AFTER_TRAINING_SECTIONS = ("description", "evaluate", "decode", "export")


# How training is spread over devices and workers: the global batch is the recipe's
# whatever the number of replicas, so a run may resume on another setting.
DISTRIBUTION_KEYS = ("distribute", "replicas", "connect_timeout")


def training_hash(recipe: dict) -> str:
    """sha256 of what determines training: the recipe less ``AFTER_TRAINING_SECTIONS``
    and how it is distributed (``DISTRIBUTION_KEYS`` of ``train``)."""
    kept = {key: value for key, value in recipe.items() if key not in AFTER_TRAINING_SECTIONS}
    if isinstance(kept.get("train"), dict):
        kept["train"] = {
            key: value for key, value in kept["train"].items() if key not in DISTRIBUTION_KEYS
        }
    return recipe_hash(kept)


def dump_recipe(recipe: dict) -> str:
    """The resolved recipe as YAML, headed by its hash."""
    body = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    return f"# sha256: {recipe_hash(recipe)}\n{body}"
