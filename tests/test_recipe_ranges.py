"""Every number a recipe holds has a range, checked before any work starts (issue 24):
the recipe models are walked so that a new field without one fails here, each range is
tried from both sides, and the settings that only fail together are refused together."""

import copy
from types import UnionType
from typing import Any, NamedTuple, Union, get_args, get_origin

import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen
from pydantic import AfterValidator, PlainValidator
from pydantic.fields import FieldInfo

from zoo import limits, registry
from zoo.recipe import (
    LAYER_ARGUMENTS,
    LAYER_ROLES,
    RecipeError,
    Section,
    layer_arguments,
    load_recipe,
    recipe_model,
    validate,
)

# One shipped recipe of each task: the base each out-of-range value is put into.
BASE_RECIPES = {
    "language_model": "lm-gru",
    "translator": "seq2seq-gru",
    "autoregressive": "ar-mlp-sine",
}


class Value(NamedTuple):
    """What a recipe value may be: its type (``| None`` dropped) and its constraints."""

    type: Any
    constraints: list

    def bounds(self, *kinds) -> list:
        return [constraint for constraint in self.constraints if isinstance(constraint, kinds)]


def value_of(annotation, constraints=()) -> Value:
    arguments = [argument for argument in get_args(annotation) if argument is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(arguments) == 1:
        annotation = arguments[0]  # null allowed
    info = FieldInfo.from_annotation(annotation)  # Annotated's constraints gathered
    return Value(info.annotation, [*constraints, *info.metadata])


def is_section(value: Value) -> bool:
    return isinstance(value.type, type) and issubclass(value.type, Section)


def values(value: Value, path: str):
    """(path, value) of a value and all within it: sections walked, list items included."""
    if is_section(value):
        for key, field in value.type.model_fields.items():
            key_path = f"{path}.{key}" if path else key
            yield from values(value_of(field.annotation, field.metadata), key_path)
        return
    yield path, value
    if get_origin(value.type) is list:
        yield f"{path}[0]", value_of(get_args(value.type)[0])


def every_value():
    for entry in registry.tasks.entries():
        for path, value in values(Value(recipe_model(type(entry.obj)), []), ""):
            yield entry.name, path, value
    for name, annotation in LAYER_ARGUMENTS.items():
        for path, value in values(value_of(annotation), f"<layer>.{name}"):
            yield "layer", path, value


def is_bounded(value: Value) -> bool:
    """A number has a least and a most value; a list a most length, and items checked
    (by their type, or by a check of the whole list: a model's layers)."""
    if value.type in (int, float):
        return bool(value.bounds(Ge, Gt) and value.bounds(Le, Lt))
    if get_origin(value.type) is list:
        checked_items = get_args(value.type)[0] is not Any or value.bounds(
            AfterValidator, PlainValidator
        )
        return bool(value.bounds(MaxLen) and checked_items)
    return True


def test_every_number_and_every_list_of_every_schema_is_bounded():
    unbounded = [f"{task}: {path}" for task, path, value in every_value() if not is_bounded(value)]
    assert not unbounded, f"give these a range in their section: {unbounded}"


def sections(model):
    yield model
    for field in model.model_fields.values():
        value = value_of(field.annotation)
        if is_section(value):
            yield from sections(value.type)


def test_every_section_refuses_unknown_keys_and_values_of_another_type():
    for entry in registry.tasks.entries():
        for section in sections(recipe_model(type(entry.obj))):
            assert issubclass(section, Section), section
            config = section.model_config
            assert config["extra"] == "forbid" and config["strict"], section
            assert config["allow_inf_nan"] is False, section


def test_every_argument_of_every_registered_layer_is_checked():
    """An argument that is not a string or a flag (a number, a list, a mapping, or
    required without a default) needs its range in LAYER_ARGUMENTS."""
    unchecked = [
        f"{entry.name}.{name}"
        for entry in registry.layers.entries()
        if entry.provider == "zoo"
        for name, parameter in layer_arguments(entry.obj).items()
        if type(parameter.default) not in (str, bool) and name not in LAYER_ARGUMENTS
    ]
    assert not unchecked, f"add these to LAYER_ARGUMENTS in zoo/recipe.py: {unchecked}"


def numeric_values():
    for task, path, value in every_value():
        if task != "layer" and value.type in (int, float) and "[" not in path:
            yield pytest.param(task, path, value, id=f"{task}:{path}")


def outside(value: Value):
    """A value just below the range and one just above it."""
    step = 1 if value.type is int else 0.5
    (lower,) = value.bounds(Ge, Gt)
    (upper,) = value.bounds(Le, Lt)
    return [
        lower.ge - step if isinstance(lower, Ge) else lower.gt,
        upper.le + step if isinstance(upper, Le) else upper.lt,
    ]


def set_value(recipe: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        recipe = recipe.setdefault(part, {})
    recipe[last] = value


@pytest.fixture(scope="module")
def base_recipes():
    return {task: load_recipe(name) for task, name in BASE_RECIPES.items()}


@pytest.mark.parametrize("task, path, value", list(numeric_values()))
def test_each_range_refuses_both_sides_at_its_path(task, path, value, base_recipes):
    for wrong in outside(value):
        recipe = copy.deepcopy(base_recipes[task])
        set_value(recipe, path, wrong)
        with pytest.raises(RecipeError) as error:
            validate(recipe)
        assert str(error.value).startswith(f"{path}: must be "), str(error.value)


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("units", 0, "must be at least 1, got 0"),
        ("units", 10**9, f"must be at most {limits.MAX_UNITS}, got 1000000000"),
        ("dropout", 1.5, "must be below 1.0, got 1.5"),
        ("dropout", -0.1, "must be at least 0.0, got -0.1"),
        ("recurrent_dropout", 1.0, "must be below 1.0, got 1.0"),
        ("weight_dropout", 2, "must be below 1.0, got 2.0"),
        ("seed", -1, "must be at least 0, got -1"),
        ("seed", 2**32, "must be at most 4294967295"),
    ],
)
def test_a_layer_argument_out_of_range_is_refused_at_its_path(argument, value, message):
    recipe = load_recipe("lm-gru")
    recipe["model"]["layers"][0][argument] = value
    with pytest.raises(RecipeError, match=rf"^model\.layers\[0\]\.{argument}: {message}"):
        validate(recipe)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model.encoder.num_layers=1000000000"],
            r"^model\.encoder\.num_layers: must be at most 64",
        ),
        (
            ["model.encoder.layer_kwargs={recurrent_dropout: 1.5}"],
            r"^model\.encoder\.layer_kwargs\.recurrent_dropout: must be below 1\.0",
        ),
        (
            ["model.encoder.layer_kwargs={unitz: 3}"],
            r"^model\.encoder\.layer_kwargs\.unitz: layer 'gru' has no argument 'unitz'; "
            "did you mean 'units'",
        ),
        (["model.encoder.layer=lstmm"], r"^model\.encoder\.layer: unknown layer 'lstmm'"),
        (
            ["model.encoder.layer=gru_cell"],
            r"^model\.encoder\.layer: expected a sequence layer .*, got 'gru_cell'",
        ),
        (["model.decoder.dropout=1.5"], r"^model\.decoder\.dropout: must be below 1\.0"),
        (["model.embedding_dropout=1.5"], r"^model\.embedding_dropout: must be below 1\.0"),
        (
            ["model.attention={name: additive_attention, units: 8, dropout: 1.5}"],
            r"^model\.attention\.dropout: must be below 1\.0",
        ),
        (
            ["model.attention={name: gru, units: 8}"],
            r"^model\.attention\.name: expected an attention layer .*, got 'gru'",
        ),
        (
            ["model.encoder={name: additive_attention, units: 8}"],
            r"^model\.encoder\.name: expected a sequence layer .*, got 'additive_attention'",
        ),
    ],
)
def test_translator_layers_are_checked_inside_out(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("seq2seq-gru", overrides)


@pytest.mark.parametrize(
    "recipe, layer, message",
    [
        ("lm-gru", {"name": "gru_cell", "units": 8}, r"\.name: expected a sequence layer that"),
        ("lm-gru", {"name": "bidirectional", "units": 8}, r"\.name: expected a sequence layer"),
        (
            "lm-gru",
            {"name": "deep_rnn", "units": 8, "layer": "bidirectional"},
            r"\.layer: expected a sequence layer that runs step by step",
        ),
        ("lm-gru", {"name": "mlp"}, r"\.name: expected a sequence layer"),
        (
            "ar-mlp-sine",
            {"name": "gru", "units": 8},
            r"\.name: expected a layer of feature vectors",
        ),
        ("ar-mlp-sine", {"name": "mlp", "hidden_units": []}, r"\.hidden_units: needs at least 1"),
        (
            "ar-mlp-sine",
            {"name": "mlp", "hidden_units": [8, 0]},
            r"\.hidden_units\[1\]: must be at least 1, got 0",
        ),
    ],
)
def test_a_layer_must_fit_its_place_in_the_model(recipe, layer, message):
    """A language model generates step by step and the autoregressive model reads
    feature vectors: a layer that cannot is refused here, not when the model is built
    after the data is read, or when a trained model is exported."""
    resolved = load_recipe(recipe)
    resolved["model"]["layers"] = [layer]
    with pytest.raises(RecipeError, match=r"^model\.layers\[0\]" + message):
        validate(resolved)


def test_a_layers_own_refusal_is_one_line_with_its_path(monkeypatch):
    with pytest.raises(RecipeError, match=r"^model\.layers\[0\]: Could not interpret activation"):
        load_recipe("lm-gru", ["model.layers[0].activation=sigmoidd"])

    def refuse(spec, **overrides):
        raise ValueError("the first line\n  and the second")

    monkeypatch.setattr(registry, "build_layer", refuse)
    with pytest.raises(RecipeError) as error:
        load_recipe("lm-gru")
    assert str(error.value) == "model.layers[0]: the first line and the second"


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        (
            "lm-gru",
            ["data.batch_size=8192", "data.num_steps=64"],
            r"^data\.batch_size: 8,192 × data\.num_steps 64 is 524,288 tokens a batch; "
            r"at most 262,144",
        ),
        (
            "seq2seq-gru",
            ["decode.beam_width=100", "decode.max_length=2000"],
            r"^decode\.beam_width: 100 × decode\.max_length 2,000 is 200,000 tokens",
        ),
        (
            "seq2seq-gru",
            ["export.beam_width=50", "decode.beam_width=1", "decode.max_length=5000"],
            r"^export\.beam_width: 50 × decode\.max_length 5,000",
        ),
        ("ar-mlp-sine", ["data.tau=999"], r"^data\.tau: must be at most data\.num_points - 2"),
        (
            "ar-mlp-sine",
            ["evaluate.horizons=[1, 397]"],
            r"^evaluate\.horizons\[1\]: must be at most data\.num_points - data\.tau - "
            r"data\.num_train \(396\)",
        ),
        (
            "ar-mlp-sine",
            ["data.num_train=995", "evaluate.horizons=[2]"],
            r"^evaluate\.horizons\[0\]: must be at most .* \(1\)",
        ),
        ("ar-mlp-sine", ["evaluate.horizons=[]"], r"^evaluate\.horizons: needs at least 1"),
        ("ar-mlp-sine", ["evaluate.horizons=[0]"], r"^evaluate\.horizons\[0\]: must be at least 1"),
        ("ar-mlp-sine", ["evaluate.horizons=[4.5]"], r"^evaluate\.horizons\[0\]: expected an int"),
    ],
)
def test_values_that_fail_only_together_are_refused_together(recipe, overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(recipe, overrides)


@pytest.mark.parametrize(
    "recipe, overrides",
    [
        ("lm-gru", ["data.batch_size=4096", "data.num_steps=64"]),  # 262,144 tokens
        ("seq2seq-gru", ["decode.beam_width=1", "decode.max_length=10000"]),
        ("seq2seq-gru", ["decode.beam_width=100", "decode.max_length=1000"]),
        ("ar-mlp-sine", ["evaluate.horizons=[396]"]),
        ("ar-mlp-sine", ["data.num_train=5000", "evaluate.horizons=[1]"]),  # cut to 995
    ],
)
def test_the_limits_themselves_are_allowed(recipe, overrides):
    load_recipe(recipe, overrides)


def test_every_role_names_the_layers_that_fill_it():
    """The layers each role's description names are zoo's layers that fill it, and no
    other (a plugin's layer may fill one too)."""
    zoo_layers = [entry for entry in registry.layers.entries() if entry.provider == "zoo"]
    for what, fits in LAYER_ROLES.values():
        named = set(what.split("(")[1].split(")")[0].split(", "))
        assert {entry.name for entry in zoo_layers if fits(entry.obj)} == named, what


def test_lists_are_bounded_in_length_before_their_items_are_built():
    """65 layers are refused at once, not built aside one by one first."""
    recipe = load_recipe("lm-gru")
    recipe["model"]["layers"] = [{"name": "gru", "units": 8}] * (limits.MAX_LAYERS + 1)
    with pytest.raises(RecipeError, match=r"^model\.layers: may hold at most 64, got 65$"):
        validate(recipe)
    with pytest.raises(RecipeError, match=r"^model\.layers\[0\]\.hidden_units: may hold at most"):
        load_recipe("ar-mlp-sine", [f"model.layers[0].hidden_units={[1] * 65}"])
