"""Recipes: YAML files that name a task, its data, a model assembled from registered
layers, training, evaluation and export. Recipes are data; this module finds, checks,
overrides and fingerprints them.

Every problem is reported as one ``RecipeError`` line that starts with the path of
the offending value, for example ``model.layers[1].units: expected an integer, got 'abc'``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import inspect
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zoo import documents, registry
from zoo.documents import MAX_DOCUMENT_BYTES, MAX_DOCUMENT_VALUES
from zoo.errors import ZooError, one_line
from zoo.limits import (
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
# A recipe's name names its folder under runs/: a plain slug, never a path.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class RecipeError(ZooError):
    """A recipe that cannot be used; the message is one line and starts with a path."""


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Field:
    """One recipe value: its kind ("int", "float", "str", "bool", "list", "layers",
    "layer", "arguments", "source"), default (``required`` when there is none), allowed
    choices and range; a list's items are each checked as ``item`` (or against
    ``item_choices``), and it holds ``min_items`` to ``max_items`` of them. Every number
    has a range: a test walks the schemas to make sure."""

    kind: str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    below: float | None = None  # an exclusive upper bound
    pattern: re.Pattern | None = None  # what a string must match, whole
    nullable: bool = False
    # allowed list items, or a registry whose names they are; () allows none
    item_choices: tuple | registry.Registry | None = None
    item: Field | None = None  # what each item of a list must be
    min_items: int = 0
    max_items: int | None = None
    role: str | None = None  # what a layer must be to fill this place (LAYER_ROLES)


_KIND_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "list": "a list",
    "layers": "a list of layers",
    "layer": "a layer (a mapping with a 'name' key)",
    "arguments": "a mapping of a layer's arguments",
    "source": "a dataset name, a file path, or {train: PATH, validation: PATH, test: PATH}",
}

# Ranges shared by several sections.
RATE = Field("float", 0.0, minimum=0.0, below=1.0)  # dropout: the share of values dropped
EPOCHS = dict(minimum=1, maximum=MAX_EPOCHS)
LEARNING_RATE = dict(minimum=0.0, maximum=MAX_LEARNING_RATE)
UNITS = dict(minimum=1, maximum=MAX_UNITS)
MIN_FREQ = dict(minimum=0, maximum=MAX_MIN_FREQ)

TRAIN_SCHEMA = {
    "optimizer": Field("str", "adam", choices=("adam", "adamw", "sgd", "rmsprop")),
    "learning_rate": Field("float", 0.001, **LEARNING_RATE),
    "epochs": Field("int", 10, **EPOCHS),
    "clip_norm": Field("float", 1.0, minimum=0.0, maximum=MAX_CLIP_NORM, nullable=True),
    "weight_decay": Field("float", 0.0, minimum=0.0, maximum=MAX_WEIGHT_DECAY),
    "patience": Field("int", None, nullable=True, **EPOCHS),
    # constant; a cosine decay from learning_rate to min_learning_rate over all epochs;
    # or plateau: the rate divided by plateau_factor (not below min_learning_rate) each
    # time validation loss has not improved for plateau_patience epochs (Zaremba et al.'s
    # and PyTorch's word_language_model's step decay; kept in state.json for --resume)
    "lr_schedule": Field("str", "constant", choices=("constant", "cosine", "plateau")),
    "min_learning_rate": Field("float", 0.0, **LEARNING_RATE),
    "plateau_factor": Field("float", 4.0, minimum=1.0, maximum=1000.0),
    "plateau_patience": Field("int", 1, **EPOCHS),
    # Polyak averaging: an exponential moving average of the weights with this momentum
    # is what validation measures, what best.keras keeps and what the run delivers
    "weight_averaging": Field("float", None, minimum=0.0, below=1.0, nullable=True),
    # adam, adamw: ε added to the bias-corrected √v̂, as PyTorch adds it (1e-8 there);
    # rmsprop: its ε; null: Keras' (1e-7, added to √v before the bias correction, which
    # slows rare words' embeddings early on: zoo.training.optimizers). sgd has none.
    "epsilon": Field("float", None, minimum=0.0, maximum=1.0, nullable=True),
    # data-parallel training (zoo.training.distribute): none; mirrored over this
    # machine's devices (`replicas` CPU devices without a GPU); multi_worker from
    # TF_CONFIG, or `zoo run recipe NAME --workers N`. data.batch_size is the global batch.
    "distribute": Field("str", "none", choices=DISTRIBUTE),
    "replicas": Field("int", 2, minimum=1, maximum=MAX_WORKERS),
    # seconds a worker waits for the others to join at the start; a peer that stops
    # answering later is found by the coordination service's heartbeat within
    # zoo.training.distribute.PEER_TIMEOUT_SECONDS
    "connect_timeout": Field("float", 300.0, minimum=1.0, maximum=MAX_CONNECT_TIMEOUT),
}

# What `zoo run recipe` exports at the end (`zoo export` makes any of them later):
# a SavedModel, and TFLite files, float and each quantization listed.
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
EXPORT_SCHEMA = {
    # the registered export formats (zoo.export.formats, and plugins')
    "formats": Field("list", ["saved_model"], item_choices=registry.exporters, max_items=16),
    "quantize": Field(
        "list", ["dynamic"], item_choices=QUANTIZATIONS, max_items=len(QUANTIZATIONS)
    ),
}

COMMON_SCHEMA = {
    "name": Field("str", required=True, pattern=NAME_PATTERN),
    "description": Field("str", ""),
    "task": Field("str", required=True),
    "seed": Field("int", 0, minimum=0, maximum=MAX_SEED),
    "train": TRAIN_SCHEMA,
    "export": EXPORT_SCHEMA,
}


def task_of(recipe: dict):
    """The registered ``zoo.tasks.Task`` a recipe names."""
    task = recipe.get("task")
    known = registry.tasks.names()
    if not isinstance(task, str) or task not in known:
        close = difflib.get_close_matches(str(task), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise RecipeError(f"task: unknown task {task!r}{hint} (known: {', '.join(known)})")
    return registry.tasks.get(task)


def _schema_for(recipe: dict) -> dict:
    return {**COMMON_SCHEMA, **task_of(recipe).recipe_sections}


# ------------------------------------------------------------------------- validation


def _describe(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:100]


def _check_value(path: str, field: Field, value: Any) -> Any:
    if value is None and field.nullable:
        return None
    kind = field.kind
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list),
        "layers": isinstance(value, list),
        "layer": isinstance(value, dict),
        "arguments": isinstance(value, dict),
        "source": isinstance(value, str) or _is_three_files(value),
    }[kind]
    if not ok:
        raise RecipeError(f"{path}: expected {_KIND_NAMES[kind]}, got {_describe(value)}")
    if kind == "float":
        value = float(value)
        if not math.isfinite(value):
            raise RecipeError(f"{path}: expected a finite number, got {value!r}")
    if field.choices and value not in field.choices:
        raise RecipeError(
            f"{path}: expected one of {', '.join(map(str, field.choices))}, got {value!r}"
        )
    if field.minimum is not None and value < field.minimum:
        raise RecipeError(f"{path}: must be at least {field.minimum}, got {value!r}")
    if field.maximum is not None and value > field.maximum:
        raise RecipeError(f"{path}: must be at most {field.maximum}, got {value!r}")
    if field.pattern is not None and not field.pattern.fullmatch(value):
        raise RecipeError(
            f"{path}: expected a plain name (letters, digits, '.', '_', '-'; "
            f"not starting with '.' or '-'), got {value[:100]!r}"
        )
    if field.below is not None and value >= field.below:
        raise RecipeError(f"{path}: must be below {field.below}, got {value!r}")
    if kind in ("list", "layers"):
        _check_length(path, field, value)
    if field.item_choices is not None:
        item_choices = field.item_choices
        if isinstance(item_choices, registry.Registry):  # read now: plugins' included
            item_choices = tuple(item_choices.names())
        for index, item in enumerate(value):
            if not item_choices:
                raise RecipeError(f"{path}[{index}]: this task offers none yet, got {item!r}")
            if item not in item_choices:
                raise RecipeError(
                    f"{path}[{index}]: expected one of {', '.join(item_choices)}, got {item!r}"
                )
    if field.item is not None:
        value = [
            _check_value(f"{path}[{index}]", field.item, item) for index, item in enumerate(value)
        ]
    if kind == "layers":
        value = [
            _check_layer(f"{path}[{index}]", spec, field.role) for index, spec in enumerate(value)
        ]
    if kind == "layer":
        value = _check_layer(path, value, field.role)
    if kind == "str" and field.role is not None:  # a layer's name: a decoder's cell
        value = _check_layer_name(path, value, field.role)
    return value


def _check_length(path: str, field: Field, items: list) -> None:
    if field.kind == "layers" and not items:
        raise RecipeError(f"{path}: needs at least one layer")
    if len(items) < field.min_items:
        raise RecipeError(f"{path}: needs at least {field.min_items}, got {len(items)}")
    if field.max_items is not None and len(items) > field.max_items:
        raise RecipeError(f"{path}: may hold at most {field.max_items}, got {len(items)}")


def _is_three_files(value) -> bool:
    """``{train: PATH, validation: PATH, test: PATH}``: a corpus in three files."""
    return (
        isinstance(value, dict)
        and sorted(value) == ["test", "train", "validation"]
        and all(isinstance(path, str) and path for path in value.values())
    )


def _check_section(path: str, schema: dict, section: Any) -> dict:
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise RecipeError(f"{path or 'recipe'}: expected a mapping, got {_describe(section)}")
    for key in section:
        if key not in schema:
            close = difflib.get_close_matches(str(key), schema, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(schema)
            raise RecipeError(f"{_join(path, key)}: unknown key{hint} (expected: {known})")
    resolved = {}
    for key, field in schema.items():
        key_path = _join(path, key)
        if isinstance(field, dict):
            resolved[key] = _check_section(key_path, field, section.get(key))
        elif key in section:
            resolved[key] = _check_value(key_path, field, section[key])
        elif field.required:
            raise RecipeError(f"{key_path}: required")
        else:
            resolved[key] = copy.deepcopy(field.default)
    return resolved


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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


# The arguments of zoo's layers that are not a string or a flag, by name: each means the
# same in every layer that takes it. A plugin layer's other arguments are checked by
# the type of their default, and by the layer itself when built aside.
LAYER_ARGUMENTS = {
    "units": Field("int", **UNITS),
    "num_layers": Field("int", minimum=1, maximum=MAX_LAYERS),
    "hidden_units": Field("list", item=Field("int", **UNITS), min_items=1, max_items=MAX_LAYERS),
    "dropout": RATE,
    "recurrent_dropout": RATE,
    "weight_dropout": RATE,
    "seed": Field("int", minimum=0, maximum=MAX_SEED, nullable=True),
    # the keyword arguments of each layer a deep_rnn stacks or a bidirectional pairs
    "layer_kwargs": Field("arguments", nullable=True),
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


def _check_layer(path: str, spec: Any, role: str | None = None) -> dict:
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


def _check_layer_name(path: str, name: Any, role: str | None = None) -> str:
    """A registered layer's name, of a layer that can fill ``role``."""
    if not isinstance(name, str):
        raise RecipeError(f"{path}: expected a string, got {_describe(name)}")
    try:
        layer_class = registry.layers.get(name)
    except registry.RegistryError as error:
        raise RecipeError(f"{path}: {error}") from None
    if role is not None:
        what, fits = LAYER_ROLES[role]
        if not fits(layer_class):
            raise RecipeError(f"{path}: expected {what}, got '{name}'")
    return name


def _check_arguments(
    path: str, name: str, arguments: dict, spec: dict, role: str | None = None
) -> None:
    """Each argument of ``spec`` (a layer entry, or the ``layer_kwargs`` of one) is one
    that layer ``name`` takes, of the right type and in range; the layer it stacks or
    pairs (``layer``) fills ``role`` too, as a sequence layer at least."""
    for key, value in spec.items():
        if key not in arguments:
            close = difflib.get_close_matches(str(key), arguments, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RecipeError(f"{path}.{key}: layer '{name}' has no argument '{key}'{hint}")
        field = LAYER_ARGUMENTS.get(key) or _field_of_default(arguments[key].default)
        if field is not None:
            _check_value(f"{path}.{key}", field, value)
    inner_role = "stepping" if role == "stepping" else "sequence"
    if "layer" in spec:  # the layer a deep_rnn stacks or a bidirectional pairs
        _check_layer_name(f"{path}.layer", spec["layer"], inner_role)
    if spec.get("layer_kwargs") and "layer" in arguments:
        inner = spec.get("layer", arguments["layer"].default)
        inner_arguments = layer_arguments(registry.layers.get(inner))
        _check_arguments(
            f"{path}.layer_kwargs", inner, inner_arguments, spec["layer_kwargs"], inner_role
        )


def _field_of_default(default: Any) -> Field | None:
    """The check of an argument that ``LAYER_ARGUMENTS`` does not list: by the type of its
    default (a plugin's numbers are then ranged by the plugin's own layer)."""
    kinds = {bool: "bool", int: "int", float: "float", str: "str"}
    return Field(kinds[type(default)]) if type(default) in kinds else None


def _build_aside(spec: dict) -> None:
    """Builds a layer to let it check its arguments, in a graph of its own: the variables
    it makes (a dropout's seed) then do not start TensorFlow's runtime, which a
    multi-worker run must configure first (``zoo.training.distribute``)."""
    import tensorflow as tf

    with tf.Graph().as_default():
        registry.build_layer(spec)


def validate(recipe: Any) -> dict:
    """Checks a recipe and returns it complete, every default filled in."""
    if not isinstance(recipe, dict):
        raise RecipeError(f"recipe: expected a mapping at the top level, got {_describe(recipe)}")
    checked = _check_section("", _schema_for(recipe), recipe)
    _check_together(checked)
    return checked


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


def path_string(parts: list) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_recipe(name_or_path: str, overrides: tuple[str, ...] | list[str] = ()) -> dict:
    """Finds, reads, overrides (``--set``) and validates a recipe."""
    raw = read_yaml(find_recipe(name_or_path))
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{name_or_path}: expected a mapping at the top level, got {_describe(raw)}"
        )
    for assignment in overrides:
        apply_override(raw, assignment)
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
