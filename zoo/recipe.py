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
    MAX_BATCH_SIZE,
    MAX_BATCH_TOKENS,
    MAX_BEAM_TOKENS,
    MAX_BEAM_WIDTH,
    MAX_CLIP_NORM,
    MAX_CONNECT_TIMEOUT,
    MAX_DECODE_LENGTH,
    MAX_EPOCHS,
    MAX_HORIZON,
    MAX_LAGS,
    MAX_LAYERS,
    MAX_LEARNING_RATE,
    MAX_LENGTH_PENALTY_ALPHA,
    MAX_MIN_FREQ,
    MAX_NOISE_STD,
    MAX_NUM_STEPS,
    MAX_SEED,
    MAX_SENTENCE_TOKENS,
    MAX_SENTENCES,
    MAX_SERIES_POINTS,
    MAX_UNITS,
    MAX_VOCAB_SIZE,
    MAX_WEIGHT_DECAY,
    MAX_WORKERS,
)
from zoo.text.formats import LINE_ENDS, PREPROCESS
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
    item_choices: tuple | None = None  # allowed list items; () allows none
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
EXPORT_FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
EXPORT_SCHEMA = {
    "formats": Field(
        "list", ["saved_model"], item_choices=EXPORT_FORMATS, max_items=len(EXPORT_FORMATS)
    ),
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

# What a language model's embedding and output layer may start from (the names of
# zoo.layers.initializers and Keras' that suit them; a test resolves each).
LANGUAGE_MODEL_INITIALIZERS = (
    "uniform",
    "normal",
    "unit_normal",
    "glorot_uniform",
    "fan_in_uniform",
    "lecun_uniform",
)

TASK_SCHEMAS = {
    "language_model": {
        "data": {
            # a dataset name, a text file (split 90/5/5) or {train, validation, test} files
            "source": Field("source", "time_machine"),
            # chapter: letters only, lower case; lower: the text in lower case; none: as is
            "preprocess": Field("str", "chapter", choices=PREPROCESS),
            # with preprocess lower or none: a line end is one space, or the token <eos>
            "line_ends": Field("str", "space", choices=LINE_ENDS),
            "token_level": Field("str", "char", choices=("char", "word")),
            "tokenizer": Field("str", None, choices=("nltk",), nullable=True),
            "num_steps": Field("int", 32, minimum=1, maximum=MAX_NUM_STEPS),
            "batch_size": Field("int", 32, minimum=1, maximum=MAX_BATCH_SIZE),
            "sampler": Field("str", "random", choices=("random", "sequential")),
            "min_freq": Field("int", 0, **MIN_FREQ),
        },
        "model": {
            # 0: one-hot inputs
            "embedding_dim": Field("int", 0, minimum=0, maximum=MAX_UNITS),
            # each runs one step at a time, to generate
            "layers": Field("layers", required=True, max_items=MAX_LAYERS, role="stepping"),
            "dropout": RATE,
            # null: by data.token_level, Keras' for characters (uniform: U(±0.05);
            # glorot_uniform), PyTorch's for words (unit_normal: N(0, 1); fan_in_uniform:
            # U(±1/√fan_in)); see zoo/layers/initializers.py. The layers' own initializers
            # are arguments of each layer in model.layers.
            "embedding_initializer": Field(
                "str", None, nullable=True, choices=LANGUAGE_MODEL_INITIALIZERS
            ),
            "head_initializer": Field(
                "str", None, nullable=True, choices=LANGUAGE_MODEL_INITIALIZERS
            ),
            # the output layer is the embedding transposed (Press & Wolf 2017): needs
            # embedding_dim equal to the last layer's units
            "tie_embeddings": Field("bool", False),
            # while training: the share of word types whose embedding is zeroed wherever
            # they occur in a batch (Gal & Ghahramani 2016)
            "embedding_dropout": RATE,
            # while training: dropout of each layer's outputs, one mask per sequence for
            # all its steps (Merity et al. 2017); a layer's own dropout does its inputs
            "locked_dropout": RATE,
        },
        # Before `train`, the same model may first read a larger text: "fra_eng_english"
        # (the English side of fra-eng) or a text file's path. Its epochs are as long as
        # the training epochs; the optimizer, schedule, clipping and weight averaging are
        # those of `train`, with this learning rate.
        "pretrain": {
            "source": Field("str", None, nullable=True),
            "epochs": Field("int", 24, **EPOCHS),
            "learning_rate": Field("float", 0.002, **LEARNING_RATE),
            # pretrain only when data.source is one of these (null: for any data), so a
            # recipe tuned for one corpus does not pretrain a user's text unasked
            "for_sources": Field("list", None, nullable=True, item=Field("str"), max_items=100),
        },
        "evaluate": {
            "splits": Field(
                "list",
                ["validation", "test"],
                item_choices=("train", "validation", "test"),
                max_items=3,
            ),
        },
    },
    "translator": {
        "data": {
            # a dataset name, a source<TAB>target file or {train, validation, test} files
            "source": Field("source", "fra_eng"),
            # chapter: lower case, a space before , . ! ?; lower / none: punctuation split
            # off words (¿ ¡ « » “ ” ; : … too), in lower case or as written
            "preprocess": Field("str", "chapter", choices=PREPROCESS),
            # null: words; nltk: words and punctuation; subword: WordPiece pieces learned on
            # the train split, subword_vocab_size of them per language
            "tokenizer": Field("str", None, choices=("nltk", "subword"), nullable=True),
            "subword_vocab_size": Field("int", 8000, minimum=16, maximum=MAX_VOCAB_SIZE),
            "num_steps": Field("int", 20, minimum=2, maximum=MAX_SENTENCE_TOKENS),
            "batch_size": Field("int", 128, minimum=1, maximum=MAX_BATCH_SIZE),
            "min_freq": Field("int", 2, **MIN_FREQ),
            "bucket": Field("bool", True),
        },
        "model": {
            "embedding_dim": Field("int", 256, **UNITS),
            "encoder": Field("layer", required=True, role="sequence"),
            "decoder": {
                "cell": Field("str", "gru_cell", choices=("rnn_cell", "gru_cell", "lstm_cell")),
                "units": Field("int", 256, **UNITS),
                "num_layers": Field("int", 2, minimum=1, maximum=MAX_LAYERS),
                "dropout": RATE,
                "deep_output": Field("bool", False),
                "tie_embeddings": Field("bool", False),
            },
            "attention": Field("layer", None, nullable=True, role="attention"),
            "sampled_softmax": Field("int", 0, minimum=0, maximum=MAX_VOCAB_SIZE),
            "embedding_dropout": RATE,
        },
        "decode": {
            "beam_width": Field("int", 4, minimum=1, maximum=MAX_BEAM_WIDTH),
            "length_penalty_alpha": Field(
                "float", 0.75, minimum=0.0, maximum=MAX_LENGTH_PENALTY_ALPHA
            ),
            "max_length": Field("int", 30, minimum=1, maximum=MAX_DECODE_LENGTH),
            "allow_unk": Field("bool", False),
        },
        "evaluate": {
            "split": Field("str", "test", choices=("validation", "test")),
            "max_sentences": Field("int", None, minimum=1, maximum=MAX_SENTENCES, nullable=True),
        },
        "export": {
            **EXPORT_SCHEMA,
            # the rows of the TFLite decode_step: the beam width an app runs (None: the
            # recipe's decode.beam_width)
            "beam_width": Field("int", None, minimum=1, maximum=MAX_BEAM_WIDTH, nullable=True),
        },
    },
    "autoregressive": {
        "data": {
            "source": Field("str", "sine", choices=("sine",)),
            "num_points": Field("int", 1000, minimum=10, maximum=MAX_SERIES_POINTS),
            "noise_std": Field("float", 0.2, minimum=0.0, maximum=MAX_NOISE_STD),
            "tau": Field("int", 4, minimum=1, maximum=MAX_LAGS),
            # pairs that train, at most all but one (the rest are held out)
            "num_train": Field("int", 600, minimum=1, maximum=MAX_SERIES_POINTS),
            "batch_size": Field("int", 16, minimum=1, maximum=MAX_BATCH_SIZE),
        },
        "model": {
            "layers": Field("layers", required=True, max_items=MAX_LAYERS, role="features"),
        },
        "evaluate": {
            # k of the k-step-ahead predictions measured on the held-out part
            "horizons": Field(
                "list",
                [1, 4, 16, 64],
                item=Field("int", minimum=1, maximum=MAX_HORIZON),
                min_items=1,
                max_items=100,
            ),
        },
    },
}


def _schema_for(recipe: dict) -> dict:
    task = recipe.get("task")
    if not isinstance(task, str) or task not in TASK_SCHEMAS:
        close = difflib.get_close_matches(str(task), TASK_SCHEMAS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise RecipeError(f"task: unknown task {task!r}{hint} (known: {', '.join(TASK_SCHEMAS)})")
    return {**COMMON_SCHEMA, **TASK_SCHEMAS[task]}


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
        for index, item in enumerate(value):
            if not field.item_choices:
                raise RecipeError(f"{path}[{index}]: this task offers none yet, got {item!r}")
            if item not in field.item_choices:
                raise RecipeError(
                    f"{path}[{index}]: expected one of "
                    f"{', '.join(field.item_choices)}, got {item!r}"
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
    data is read, a model is built or training is over."""
    data = recipe.get("data", {})
    if data.get("line_ends") == "eos" and data.get("preprocess") == "chapter":
        raise RecipeError(
            "data.line_ends: eos keeps line ends, which data.preprocess chapter turns into "
            "spaces; set data.preprocess to lower or none"
        )
    train = recipe.get("train", {})
    if train.get("optimizer") == "sgd" and train.get("epsilon") is not None:
        raise RecipeError("train.epsilon: train.optimizer sgd has no epsilon; set it to null")
    model = recipe.get("model", {})
    if model.get("tie_embeddings"):
        _check_tied_language_model(model)
    decoder = model.get("decoder")
    if isinstance(decoder, dict) and decoder.get("tie_embeddings"):
        if decoder["units"] != model["embedding_dim"]:
            raise RecipeError(
                f"model.decoder.tie_embeddings: needs model.decoder.units ({decoder['units']}) "
                f"equal to model.embedding_dim ({model['embedding_dim']})"
            )
    if "num_steps" in data:
        _check_product(
            "data.batch_size",
            data["batch_size"],
            "data.num_steps",
            data["num_steps"],
            MAX_BATCH_TOKENS,
            "tokens a batch",
        )
    if "decode" in recipe:
        decode, export = recipe["decode"], recipe["export"]
        for path, beam_width in (
            ("decode.beam_width", decode["beam_width"]),
            ("export.beam_width", export["beam_width"]),
        ):
            if beam_width is not None:
                _check_product(
                    path,
                    beam_width,
                    "decode.max_length",
                    decode["max_length"],
                    MAX_BEAM_TOKENS,
                    "tokens of beam history a sentence",
                )
    if recipe["task"] == "autoregressive":
        _check_series(data, recipe["evaluate"]["horizons"])


def _check_tied_language_model(model: dict) -> None:
    """Tied embeddings read the last layer's outputs through the embedding matrix, so
    both must be as wide (no projection between them: Merity et al. size the last
    layer to the embedding instead)."""
    top_units = model["layers"][-1].get("units")
    if not model["embedding_dim"] or (
        top_units is not None and top_units != model["embedding_dim"]
    ):
        raise RecipeError(
            f"model.tie_embeddings: needs model.embedding_dim ({model['embedding_dim']}) equal "
            f"to the last layer's units ({top_units}); set model.layers[-1].units to it"
        )


def _check_product(path, value, other_path, other, most, what) -> None:
    """Two values that are each in range but together ask for too much memory or time."""
    if value * other > most:
        raise RecipeError(
            f"{path}: {value:,} × {other_path} {other:,} is {value * other:,} {what}; "
            f"at most {most:,} (lower either)"
        )


def _check_series(data: dict, horizons: list) -> None:
    """The sine series must leave τ-lag pairs to train on, and after them a window for
    the longest k-step-ahead prediction (``zoo.tasks.autoregression``)."""
    num_points, tau = data["num_points"], data["tau"]
    if tau > num_points - 2:
        raise RecipeError(
            f"data.tau: must be at most data.num_points - 2 ({num_points - 2}) to leave a "
            f"pair to train on and one held out, got {tau}"
        )
    num_train = min(data["num_train"], num_points - tau - 1)  # as SineData cuts it
    longest = num_points - tau - num_train
    for index, horizon in enumerate(horizons):
        if horizon > longest:
            raise RecipeError(
                f"evaluate.horizons[{index}]: must be at most data.num_points - data.tau - "
                f"data.num_train ({longest}), the steps after the training pairs, got {horizon}"
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
