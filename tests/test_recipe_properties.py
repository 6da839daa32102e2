"""Property tests of the recipe validator and the --set parser: whatever a user writes,
the answer is a complete recipe or one RecipeError line, never another exception."""

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import MAX_MESSAGE_CHARS, one_line
from zoo.recipe import (
    MAX_RECIPE_VALUES,
    RecipeError,
    apply_override,
    load_recipe,
    read_yaml,
    validate,
)

BASE = {
    "name": "small-lm",
    "task": "language_model",
    "data": {"source": "time_machine", "num_steps": 16, "batch_size": 32},
    "model": {"layers": [{"name": "gru", "units": 16}]},
    "train": {"epochs": 2, "learning_rate": 0.01},
}

KEYS = [
    "name",
    "task",
    "seed",
    "data",
    "model",
    "train",
    "evaluate",
    "export",
    "decode",
    "layers",
    "units",
    "epochs",
    "learning_rate",
    "num_steps",
    "source",
    "dropout",
    "beam_width",
    "encoder",
    "decoder",
    "splits",
    "formats",
    "pretrain",
    "0",
    "",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["gru", "lstm", "language_model", "translator"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = st.lists(
    st.sampled_from(KEYS) | st.integers(-1, 3).map(lambda index: f"[{index}]"),
    min_size=0,
    max_size=4,
).map(lambda parts: ".".join(parts).replace(".[", "["))
YAML_TEXT = st.lists(
    st.sampled_from(list("abc01.-:[]{}&*!#'\",\\ \n\t|>%@`~=e") + ["nan", "1e3", "!!python/"]),
    max_size=30,
).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_one_line(error: RecipeError):
    message = one_line(error)
    assert message and "\n" not in message and len(message) <= MAX_MESSAGE_CHARS


@SETTINGS
@given(VALUES)
def test_any_document_validates_or_is_one_line(document):
    try:
        recipe = validate(document)
    except RecipeError as error:
        assert_one_line(error)
    else:
        assert validate(recipe) == recipe  # complete, and still valid


@SETTINGS
@given(st.sampled_from(KEYS[:8]), VALUES)
def test_any_value_in_a_good_recipe_validates_or_is_one_line(key, value):
    recipe = {**copy.deepcopy(BASE), key: value}
    try:
        validate(recipe)
    except RecipeError as error:
        assert_one_line(error)


@SETTINGS
@given(PATHS, YAML_TEXT)
def test_any_set_validates_or_is_one_line(path, text):
    recipe = copy.deepcopy(BASE)
    try:
        apply_override(recipe, f"{path}={text}")
        validate(recipe)
    except RecipeError as error:
        assert_one_line(error)


@SETTINGS
@given(st.text(max_size=60))
def test_any_set_argument_validates_or_is_one_line(assignment):
    recipe = copy.deepcopy(BASE)
    try:
        apply_override(recipe, assignment)
        validate(recipe)
    except RecipeError as error:
        assert_one_line(error)


@SETTINGS
@given(YAML_TEXT)
def test_any_recipe_file_loads_or_is_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_recipe(str(path))
    except RecipeError as error:
        assert_one_line(error)


@pytest.mark.slow
@SETTINGS
@given(st.integers(1, 12), st.integers(2, 12))
def test_alias_bombs_fail_fast(depth, width):
    lines = ["a0: &a0 [x]"]
    for level in range(1, depth + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    text = "\n".join(lines) + "\n"
    nodes = [2]  # a0's list and its x
    for _ in range(depth):
        nodes.append(1 + width * nodes[-1])
    expanded = len(nodes) + sum(nodes)  # the keys, then each value expanded
    yaml.safe_load(text)  # the document itself is fine YAML
    try:
        read_yaml_text(text)
    except RecipeError as error:
        assert expanded > MAX_RECIPE_VALUES, "refused only when it is large"
        assert "YAML aliases" in str(error)
    else:
        assert expanded <= MAX_RECIPE_VALUES


def read_yaml_text(text):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.yaml"
        path.write_text(text)
        return read_yaml(path)
