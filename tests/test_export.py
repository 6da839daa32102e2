"""`zoo export` end to end on small trained runs of both tasks: the files, export.json,
the card's measured parity and quality, running the export without TensorFlow, a
SavedModel without zoo, and the failures an export must survive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_translation import write_tiny_translator

from zoo.cli.main import cli
from zoo.pipeline import export_run, generate_from_run, run_recipe, translate_with_run

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300


@pytest.fixture(scope="module")
def language_model_export(tmp_path_factory, small_corpus):
    folder = tmp_path_factory.mktemp("lm-export")
    recipe = folder / "lm.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "small-lm",
                "task": "language_model",
                "data": {"source": str(small_corpus), "num_steps": 16, "batch_size": 32},
                "model": {"embedding_dim": 8, "layers": [{"name": "lstm", "units": 24}]},
                "train": {"epochs": 1, "learning_rate": 0.01},
                "export": {"formats": []},
            }
        )
    )
    run = folder / "run"
    run_recipe(str(recipe), out=str(run))
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "dynamic"])
    assert result.exit_code == 0, result.output
    return run, run / "export"


@pytest.fixture(scope="module")
def translator_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translator-export")
    recipe, _ = write_tiny_translator(folder, decoder={"deep_output": True})
    run = folder / "run"
    run_recipe(str(recipe), out=str(run), seed=0)
    export_run(str(run), quantizations=("dynamic",), beam_width=3)
    return run, run / "export"


def no_tensorflow(code: str) -> str:
    """Runs ``code`` in a fresh Python and checks it never imported TensorFlow."""
    check = "\nimport sys\nassert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code + check],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_a_language_model_export_holds_what_an_app_needs(language_model_export):
    _, export = language_model_export
    names = {path.name for path in export.iterdir()}
    assert {
        "model.tflite",
        "model-dynamic.tflite",
        "saved_model",
        "vocab.txt",
        "recipe.yaml",
        "export.json",
        "card.json",
        "card.md",
    } <= names
    assert not any(name.startswith(".") for name in names)
    manifest = json.loads((export / "export.json").read_text())
    assert manifest["task"] == "language_model" and manifest["format"] == "zoo-export"
    step = manifest["signatures"]["step"]
    assert [tensor["name"] for tensor in step["inputs"]] == ["tokens", "state_0", "state_1"]
    assert step["inputs"][0] == {"name": "tokens", "shape": [1], "dtype": "int32"}
    assert step["outputs"][0]["shape"] == [1, manifest["vocab"]["size"]]
    assert [entry["quantization"] for entry in manifest["tflite"]] == ["none", "dynamic"]
    sizes = {entry["quantization"]: entry["size"] for entry in manifest["tflite"]}
    assert sizes["dynamic"] < sizes["none"]


def test_the_card_measures_parity_latency_and_quality(language_model_export):
    _, export = language_model_export
    card = json.loads((export / "card.json").read_text())
    backends = card["parity"]["backends"]
    assert set(backends) == {"saved_model", "tflite/interpreter", "tflite/compiled_model"}
    for values in backends.values():
        assert values["max_abs_logit_difference"] <= 1e-4
        assert values["greedy_identical"] is True
    quality = card["quality"]
    assert quality["metric"] == "perplexity" and quality["tokens"] > 100
    assert quality["model.tflite"] == pytest.approx(quality["keras"], rel=1e-4)
    assert quality["model-dynamic.tflite"] == pytest.approx(quality["keras"], rel=0.05)
    assert all(latency > 0 for name, latency in card["latency"].items() if name != "unit")
    for entry in card["files"]:
        assert "WHILE" not in entry["ops"] and all(not op.startswith("Flex") for op in entry["ops"])
    card_md = (export / "card.md").read_text()
    assert "## Parity with the Keras model" in card_md and "model-dynamic.tflite" in card_md


def test_generating_from_the_export_needs_no_tensorflow(language_model_export):
    run, export = language_model_export
    expected = generate_from_run(str(run), "time traveller", 30, greedy=True)
    code = (
        "from zoo.pipeline import generate_from_run\n"
        f"print(generate_from_run({str(export)!r}, 'time traveller', 30, greedy=True))"
    )
    assert no_tensorflow(code).rstrip("\n") == expected


@pytest.mark.slow
def test_translating_from_the_export_needs_no_tensorflow(translator_export):
    run, export = translator_export
    sentences = ["i'm home .", "go .", "he's calm ."]
    expected = translate_with_run(str(run), sentences, beam_width=3)
    code = (
        "from zoo.pipeline import translate_with_run\n"
        f"print('\\n'.join(translate_with_run({str(export)!r}, {sentences!r}, beam_width=3)))"
    )
    assert no_tensorflow(code).splitlines() == expected
    greedy = translate_with_run(str(export), sentences, beam_width=1)
    assert greedy == translate_with_run(str(run), sentences, beam_width=1)


@pytest.mark.slow
def test_a_translator_export_card_and_manifest(translator_export):
    _, export = translator_export
    manifest = json.loads((export / "export.json").read_text())
    decode = manifest["signatures"]["decode_step"]
    assert decode["inputs"][0] == {"name": "token", "shape": [3], "dtype": "int32"}
    assert manifest["decoding"]["beam_width"] == 3
    assert manifest["target_vocab"]["special_ids"]["<bos>"] == 1
    encode_outputs = [tensor["name"] for tensor in manifest["signatures"]["encode"]["outputs"]]
    assert encode_outputs == [tensor["name"] for tensor in decode["inputs"][1:]]
    card = json.loads((export / "card.json").read_text())
    for values in card["parity"]["backends"].values():
        assert values["max_abs_log_prob_difference"] <= 1e-4
        assert values["beam_search_identical"] is True
    assert card["quality"]["model.tflite"] == pytest.approx(card["quality"]["keras"], abs=1e-6)


@pytest.mark.slow
def test_a_wider_beam_than_exported_is_one_line(translator_export):
    _, export = translator_export
    result = CliRunner().invoke(cli, ["translate", str(export), "go .", "--beam", "5"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "--beam 5" in result.stderr


def run_without_zoo(code: str) -> str:
    code += (
        "\nimport sys\nassert not [m for m in sys.modules if m == 'zoo' or m.startswith('zoo.')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_a_savedmodel_translates_without_zoo(translator_export):
    run, export = translator_export
    sentences = ["i'm home .", "Go.", "He's calm!", "we won .", "zorglub ."]
    code = f"""
import tensorflow as tf
loaded = tf.saved_model.load({str(export / "saved_model")!r})
assert {{"encode", "decode_step", "translate"}} <= set(loaded.signatures)
result = loaded.signatures["translate"](sentences=tf.constant({sentences!r}))
print("\\n".join(text.decode() for text in result["translations"].numpy()))
"""
    assert run_without_zoo(code).splitlines() == translate_with_run(str(run), sentences)


@pytest.mark.slow  # a fresh TensorFlow process, as its translator twin above
def test_a_savedmodel_generates_without_zoo(language_model_export):
    run, export = language_model_export
    code = f"""
import tensorflow as tf
loaded = tf.saved_model.load({str(export / "saved_model")!r})
generate = loaded.signatures["generate"]
greedy = generate(prefix=tf.constant("Time Traveller!"), length=tf.constant(30),
                  temperature=tf.constant(0.0))
sampled = generate(prefix=tf.constant("the"), length=tf.constant(12), temperature=tf.constant(1.0))
print(greedy["text"].numpy().decode())
print(len(sampled["text"].numpy().decode()))
"""
    greedy, sampled_length = run_without_zoo(code).rstrip("\n").split("\n")
    assert greedy == generate_from_run(str(run), "Time Traveller!", 30, greedy=True)
    assert int(sampled_length) == len("the") + 12


@pytest.mark.parametrize(
    "text",
    ["Go.", "Va !", "J'ai faim...", "hello ,world", "a..b", "Ça\u00a0alors\u202f!", "  x  ", "?!"],
)
def test_the_graph_cleaning_is_the_python_cleaning(text):
    import tensorflow as tf

    from zoo.export.text_signatures import clean_time_machine, clean_translation
    from zoo.text import cleaning

    assert clean_translation(tf.constant(text)).numpy().decode() == cleaning.clean_translation(text)
    graph = clean_time_machine(tf.constant(text)).numpy().decode()
    assert graph == cleaning.clean_time_machine(text)


def test_a_failure_mid_export_leaves_the_earlier_export(language_model_export, monkeypatch):
    run, export = language_model_export
    before = {path.name: path.stat().st_mtime_ns for path in export.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr("zoo.export.exporter.write_card", broken)
    with pytest.raises(RuntimeError, match="injected"):
        export_run(str(run), formats=("tflite",), quantizations=(), measure=False)
    assert {path.name: path.stat().st_mtime_ns for path in export.iterdir()} == before
    assert not [path for path in run.iterdir() if ".partial" in path.name]


def test_a_failure_mid_export_leaves_nothing_new(language_model_export, tmp_path, monkeypatch):
    run, _ = language_model_export
    monkeypatch.setattr("zoo.export.exporter.write_manifest", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        export_run(
            str(run), formats=("tflite",), quantizations=(), out=tmp_path / "new", measure=False
        )
    assert list(tmp_path.iterdir()) == []


def test_an_export_never_overwrites_a_users_folder(language_model_export, tmp_path):
    run, _ = language_model_export
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(mine), "--no-measure"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"zoo: error: {mine}: exists and is not a zoo export (no export.json); choose "
        "another --out"
    )
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def test_a_damaged_tflite_file_is_one_line(language_model_export, tmp_path):
    import shutil

    _, export = language_model_export
    damaged = tmp_path / "damaged"
    shutil.copytree(export, damaged)
    content = (damaged / "model.tflite").read_bytes()
    (damaged / "model.tflite").write_bytes(content[: len(content) // 3])
    result = CliRunner().invoke(cli, ["generate", str(damaged), "--prefix", "the", "--length", "5"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"zoo: error: {damaged / 'model.tflite'}")
    assert result.stderr.count("\n") == 1
