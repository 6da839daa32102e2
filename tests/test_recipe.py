"""Recipe validation, overrides and provenance."""

import pytest
import yaml

from zoo.recipe import (
    RecipeError,
    apply_override,
    builtin_recipe_paths,
    dump_recipe,
    load_recipe,
    recipe_hash,
    validate,
)


def lm_recipe(**model):
    return {
        "name": "t",
        "task": "language_model",
        "model": {"layers": [{"name": "lstm", "units": 8}], **model},
    }


@pytest.mark.parametrize("name", sorted(builtin_recipe_paths()))
def test_every_builtin_recipe_is_valid(name):
    recipe = load_recipe(name)
    assert recipe["name"] == name
    assert validate(recipe) == recipe  # resolved recipes are fixed points


def test_defaults_are_filled_in():
    recipe = validate(lm_recipe())
    assert recipe["train"]["epochs"] == 10
    assert recipe["data"]["source"] == "time_machine"
    assert recipe["export"]["formats"] == ["saved_model"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda r: r["model"]["layers"][0].update(units="abc"),
            "model.layers[0].units: expected an integer, got 'abc'",
        ),
        (
            lambda r: r["model"]["layers"][0].update(name="lstmm"),
            "model.layers[0].name: unknown layer 'lstmm'; did you mean 'lstm'",
        ),
        (
            lambda r: r["model"]["layers"][0].update(unitz=3),
            "model.layers[0].unitz: layer 'lstm' has no argument 'unitz'; did you mean 'units'?",
        ),
        (lambda r: r.update(trian={}), "trian: unknown key; did you mean 'train'?"),
        (lambda r: r.update(train={"epochs": 0}), "train.epochs: must be at least 1, got 0"),
        (
            lambda r: r.update(train={"learning_rate": "fast"}),
            "train.learning_rate: expected a number, got 'fast'",
        ),
        (
            lambda r: r.update(data={"sampler": "shuffled"}),
            "data.sampler: expected one of random, sequential, got 'shuffled'",
        ),
        (
            lambda r: r.update(task="translate_everything"),
            "task: unknown task 'translate_everything'",
        ),
        (lambda r: r["model"].update(layers=[]), "model.layers: needs at least one layer"),
        (
            lambda r: r["model"]["layers"][0].pop("units"),
            "model.layers[0].units: required by layer 'lstm'",
        ),
        (
            lambda r: r["model"]["layers"][0].update(return_sequences="yes"),
            "model.layers[0].return_sequences: expected true or false",
        ),
        (lambda r: r.pop("name"), "name: required"),
    ],
)
def test_a_wrong_recipe_is_one_line_naming_its_path(mutate, message):
    recipe = lm_recipe()
    mutate(recipe)
    with pytest.raises(RecipeError) as error:
        validate(recipe)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_overrides_are_typed_and_take_indices():
    recipe = lm_recipe()
    apply_override(recipe, "train.epochs=3")
    apply_override(recipe, "model.layers[0].units=128")
    apply_override(recipe, "train.clip_norm=null")
    resolved = validate(recipe)
    assert resolved["train"]["epochs"] == 3
    assert resolved["model"]["layers"][0]["units"] == 128
    assert resolved["train"]["clip_norm"] is None


def test_an_override_of_a_missing_index_is_refused():
    with pytest.raises(RecipeError, match=r"model.layers\[3\] does not exist"):
        apply_override(lm_recipe(), "model.layers[3].units=1")
    with pytest.raises(RecipeError, match="expected PATH=VALUE"):
        apply_override(lm_recipe(), "train.epochs")


def test_a_user_recipe_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(lm_recipe()))
    assert load_recipe(str(path), ["train.epochs=2"])["train"]["epochs"] == 2


def test_unreadable_recipes_are_one_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML at line"):
        load_recipe(str(broken))
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(str(tmp_path / "missing.yaml"))
    with pytest.raises(RecipeError, match="unknown recipe 'lm-lsmt'; did you mean 'lm-lstm'"):
        load_recipe("lm-lsmt")


def test_hash_is_stable_and_sensitive():
    recipe = validate(lm_recipe())
    assert recipe_hash(recipe) == recipe_hash(validate(lm_recipe()))
    changed = validate(lm_recipe(dropout=0.5))
    assert recipe_hash(changed) != recipe_hash(recipe)
    dumped = dump_recipe(recipe)
    assert dumped.startswith(f"# sha256: {recipe_hash(recipe)}")
    assert yaml.safe_load(dumped) == recipe


def test_numbers_in_exponent_form_are_floats():
    recipe = lm_recipe()
    apply_override(recipe, "train.learning_rate=1e-3")
    assert validate(recipe)["train"]["learning_rate"] == 0.001
    apply_override(recipe, "train.learning_rate=2e2")
    assert validate(recipe)["train"]["learning_rate"] == 200.0


def test_export_formats_and_quantizations_are_checked():
    recipe = lm_recipe()
    recipe["export"] = {"formats": ["saved_model", "tflite"], "quantize": ["dynamic", "int8"]}
    assert validate(recipe)["export"]["quantize"] == ["dynamic", "int8"]
    recipe["export"] = {"formats": ["onnx"]}
    with pytest.raises(RecipeError, match=r"export.formats\[0\]: expected one of saved_model"):
        validate(recipe)
    recipe["export"] = {"quantize": ["int4"]}
    with pytest.raises(RecipeError, match=r"export.quantize\[0\]: expected one of none"):
        validate(recipe)
    translator = {
        "name": "t",
        "task": "translator",
        "model": {"encoder": {"name": "gru", "units": 8}},
        "export": {"formats": ["tflite"], "beam_width": 0},
    }
    with pytest.raises(RecipeError, match=r"export.beam_width"):
        validate(translator)


def test_tied_embeddings_need_matching_sizes():
    """Caught by validation, with the paths, before any data is read or model built."""
    from zoo.recipe import load_recipe

    recipe = load_recipe("seq2seq-attn", ["model.embedding_dim=128", "model.decoder.units=128"])
    assert recipe["model"]["decoder"]["tie_embeddings"] is True
    with pytest.raises(
        RecipeError,
        match=r"^model.decoder.tie_embeddings: needs model.decoder.units \(256\) equal to "
        r"model.embedding_dim \(128\)$",
    ):
        load_recipe(
            "seq2seq-attn", ["model.decoder.tie_embeddings=true", "model.embedding_dim=128"]
        )
