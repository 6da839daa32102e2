"""Shipped models end to end: tiny runs trained once, `zoo models add`-ed into a
temporary saved_models/, then loaded by name, path and run, checked on every load,
and refused when a file changed or a `.keras` file would run code."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import zoo
from zoo.cli.main import cli
from zoo.errors import ZooError
from zoo.models import LanguageModel, Translator
from zoo.pipeline import generate_from_run, translate_with_run
from zoo.pretrained import artifacts
from zoo.pretrained.catalog import CatalogError, load_catalog
from zoo.pretrained.publish import add_model
from zoo.training.run_directory import RunError

PREFIX = "time traveller"


@pytest.fixture(scope="session")
def runs(tmp_path_factory, trained_run, translator_run):
    """Copies of the session's tiny language model (given an export) and tiny translator."""
    folder = tmp_path_factory.mktemp("pretrained-runs")
    lm = shutil.copytree(trained_run[1], folder / "lm-run")
    translator = shutil.copytree(translator_run[0], folder / "translator-run")
    # an export, as the export commands leave them (made for real by their own tests)
    (lm / "export" / "tflite").mkdir(parents=True)
    (lm / "export" / "tflite" / "model.tflite").write_bytes(b"TFL3" + bytes(60))
    return {"lm": lm, "translator": translator}


@pytest.fixture(scope="session")
def shipped(runs, tmp_path_factory):
    """A saved_models/ root and its registry.yaml holding the two runs, added by
    `zoo models add`."""
    top = tmp_path_factory.mktemp("shipped")
    registry_file, root = top / "registry.yaml", top / "saved_models"
    add_model(runs["lm"], "tiny-lm", "a tiny LM", registry_file=registry_file, root=root)
    add_model(runs["translator"], "tiny-translator", registry_file=registry_file, root=root)
    return registry_file, root


def use_catalog(monkeypatch, tmp_path, registry_file, root):
    monkeypatch.setenv("ZOO_SHIPPED_REGISTRY", str(registry_file))
    monkeypatch.setenv("ZOO_SAVED_MODELS", str(root))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "ZOO_REGISTRY", ""
    )  # restored after the test, unlike a delenv of an unset name


@pytest.fixture
def catalog(shipped, monkeypatch, tmp_path):
    use_catalog(monkeypatch, tmp_path, *shipped)
    return shipped


@pytest.fixture
def copied_catalog(shipped, monkeypatch, tmp_path):
    """A copy of the shipped catalog that a test may damage."""
    registry_file, root = shipped
    copy = tmp_path / "copy"
    shutil.copytree(root, copy / "saved_models")
    shutil.copy(registry_file, copy / "registry.yaml")
    use_catalog(monkeypatch, tmp_path, copy / "registry.yaml", copy / "saved_models")
    return copy / "registry.yaml", copy / "saved_models"


def files_of(folder):
    return {
        path.relative_to(folder).as_posix(): path.stat().st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_add_copies_the_run_writes_the_card_and_a_valid_entry(catalog, runs):
    registry_file, root = catalog
    entry = load_catalog().get("tiny-lm")
    assert entry.task == "language_model" and entry.description == "a tiny LM"
    assert set(entry.artifacts) >= {"model.keras", "vocab.txt", "recipe.yaml", "card.md"}
    assert "export/tflite/model.tflite" in entry.artifacts
    assert not any(path.startswith(("checkpoints/", "logs/")) for path in entry.artifacts)
    metrics = json.loads((runs["lm"] / "metrics.json").read_text())
    assert entry.metrics["perplexity"] == metrics["perplexity"]
    assert "train_seconds" not in entry.metrics  # test metrics only; timings are in the card
    assert entry.recipe["sha256"] == metrics["recipe_sha256"]
    card = (root / "tiny-lm" / "card.md").read_text()
    for heading in ("Data and licence", "Recipe", "Training", "Test metrics", "Sample outputs"):
        assert f"## {heading}" in card
    assert f"    {PREFIX}" in card and "machine: Linux" in card
    translator_card = (root / "tiny-translator" / "card.md").read_text()
    assert "| i'm home . |" in translator_card
    assert (
        yaml.safe_load(registry_file.read_text())["models"]["tiny-translator"]["metrics"]["bleu"]
        >= 0
    )


def test_list_info_and_verify(catalog):
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.output)] == ["tiny-lm", "tiny-translator"]
    info = runner.invoke(cli, ["models", "info", "tiny-translator", "--json"])
    assert json.loads(info.output)["artifacts"]["src_vocab.txt"]["size"] > 0
    verified = runner.invoke(cli, ["models", "verify"])
    assert verified.exit_code == 0 and verified.output.strip() == "ok"
    unknown = runner.invoke(cli, ["models", "info", "tiny-lmm"])
    assert unknown.exit_code == 2 and "did you mean 'tiny-lm'" in unknown.output


def test_add_refuses_an_existing_name_unless_replace(copied_catalog, runs):
    registry_file, root = copied_catalog
    with pytest.raises(CatalogError, match="'tiny-lm' exists .*--replace"):
        add_model(runs["lm"], "tiny-lm", registry_file=registry_file, root=root)
    command = ["models", "add", str(runs["lm"]), "--name", "tiny-lm", "--description", "again"]
    refused = CliRunner().invoke(cli, command)
    assert refused.exit_code == 2 and "--replace replaces it" in refused.output
    replaced = CliRunner().invoke(cli, [*command, "--replace", "--exclude", "export/tflite/*"])
    assert replaced.exit_code == 0, replaced.output
    entry = load_catalog().get("tiny-lm")
    assert entry.description == "again"
    assert not any(path.startswith("export/") for path in entry.artifacts)
    assert not (root / "tiny-lm" / "export").exists()
    assert load_catalog().names() == ["tiny-lm", "tiny-translator"]
    assert not [path for path in root.iterdir() if path.name.startswith(".")]  # no staging left


@pytest.mark.slow
def test_load_by_name_path_and_run_agree(catalog, runs):
    _, root = catalog
    by_name = zoo.load("tiny-lm")
    expected = generate_from_run(str(runs["lm"]), PREFIX, 12, greedy=True)
    assert by_name.generate(PREFIX, length=12, greedy=True) == expected
    for name_or_path in (root / "tiny-lm", runs["lm"]):
        model = zoo.load(name_or_path)
        assert isinstance(model, LanguageModel) and model.preset.recipe == by_name.preset.recipe
        assert model.preset.vocabularies["vocab.txt"].to_tokens([1, 2, 3])
        for ours, theirs in zip(model.weights, by_name.weights, strict=True):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    translator = zoo.load("tiny-translator")
    assert (
        translator.translate("i'm home .")
        == translate_with_run(str(runs["translator"]), ["i'm home ."])[0]
    )
    assert len(translator.translate(["go .", "i lost ."], beam=2)) == 2
    assert Translator.from_preset("tiny-translator").translate("go .") == translator.translate(
        "go ."
    )
    with pytest.raises(ZooError, match="tiny-lm: a LanguageModel, not a Translator"):
        Translator.from_preset("tiny-lm")
    with pytest.raises(ZooError, match=r"from_preset\(name\)"):
        LanguageModel(vocab_size=5, layers=[{"name": "gru", "units": 4}]).generate("a")


def test_cli_commands_take_a_model_name(catalog, runs):
    runner = CliRunner()
    generated = runner.invoke(
        cli, ["generate", "tiny-lm", "--prefix", PREFIX, "--length", "12", "--greedy"]
    )
    assert generated.exit_code == 0, generated.output
    assert generated.output.strip() == generate_from_run(str(runs["lm"]), PREFIX, 12, greedy=True)
    translated = runner.invoke(cli, ["translate", "tiny-translator", "go ."])
    assert translated.exit_code == 0 and translated.output.strip()


def test_evaluating_a_shipped_model_writes_nothing_into_saved_models(catalog, tmp_path):
    registry_file, root = catalog
    before = files_of(root)
    result = CliRunner().invoke(cli, ["evaluate", "tiny-translator", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["bleu"] == pytest.approx(
        load_catalog().get("tiny-translator").metrics["bleu"], abs=0.1
    )
    assert files_of(root) == before
    work = tmp_path / "home" / "work" / "tiny-translator"
    assert list(work.glob("translations-test-beam*.tsv"))  # zoo evaluate's own file names


def test_a_tampered_artifact_is_refused_on_load_naming_both_hashes(copied_catalog):
    _, root = copied_catalog
    model_file = root / "tiny-lm" / "model.keras"
    expected = artifacts.file_sha256(model_file)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    model_file.write_bytes(bytes(data))
    with pytest.raises(CatalogError) as raised:
        zoo.load("tiny-lm")
    message = str(raised.value)
    assert "tiny-lm: model.keras: sha256 " in message and expected in message
    assert artifacts.file_sha256(model_file) in message and "\n" not in message
    result = CliRunner().invoke(cli, ["generate", "tiny-lm", "--prefix", PREFIX])
    assert result.exit_code == 2 and result.output.startswith("zoo: error: tiny-lm: model.keras")
    verified = CliRunner().invoke(cli, ["models", "verify", "tiny-lm"])
    assert verified.exit_code == 1 and "model.keras: sha256" in verified.output
    (root / "tiny-lm" / "vocab.txt").unlink()
    assert "vocab.txt: missing" in CliRunner().invoke(cli, ["models", "verify"]).output


def unregistered_layer():
    import keras

    class Unregistered(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    return Unregistered()


def lambda_layer():
    import keras

    return keras.layers.Lambda(lambda x: x * 2)


@pytest.mark.parametrize(
    ("make_layer", "message"),
    [
        (lambda_layer, "refused by safe_mode: the file holds Python code"),
        (unregistered_layer, "corrupt or unreadable model file .*could not be deserialized"),
    ],
    ids=["lambda", "unregistered"],
)
def test_a_keras_file_that_would_run_code_is_refused(runs, tmp_path, make_layer, message):
    import keras

    folder = shutil.copytree(
        runs["lm"], tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs", "export")
    )
    hostile = keras.Sequential([keras.Input((3,)), make_layer()])
    hostile.save(folder / "model.keras")
    with pytest.raises(RunError, match=message) as raised:
        zoo.load(folder)
    assert "\n" not in str(raised.value)


def test_a_shipped_models_export_folder_is_verified_before_it_is_used(copied_catalog):
    _, root = copied_catalog
    (root / "tiny-lm" / "export" / "export.json").write_text("{}")  # an export folder
    (root / "tiny-lm" / "vocab.txt").write_text("changed\n")
    with pytest.raises(CatalogError, match="tiny-lm: vocab.txt: size"):
        zoo.load(root / "tiny-lm" / "export")
    result = CliRunner().invoke(
        cli, ["generate", str(root / "tiny-lm" / "export"), "--prefix", PREFIX]
    )
    assert result.exit_code == 2 and "tiny-lm: vocab.txt: size" in result.output
