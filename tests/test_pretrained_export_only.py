"""Export-only pretrained models (a phone build): `zoo models add RUN/export` keeping one
TFLite file makes a registry entry with no model.keras, whose metrics are that file's
own from the export's card (whole test split); `zoo translate NAME` runs it on LiteRT,
and what needs a trained model refuses it in one line."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner
from test_pretrained_models import use_catalog

import zoo
from zoo.cli.main import cli
from zoo.export.tflite import INT8_EMBEDDINGS
from zoo.pretrained.catalog import CatalogError, read_catalog_file
from zoo.pretrained.publish import add_model

PHONE_FILE = "model-int8-embeddings.tflite"
DYNAMIC_FILE = "model-dynamic.tflite"
SOURCES = ["i'm home .", "go ."]


@pytest.fixture(scope="module")
def exported(translator_run, tmp_path_factory):
    """The tiny translator's phone build at beam 2 (``zoo export --no-float``): the
    int8-embeddings and the dynamic-range files, no float one, measured (about 11 s on
    two quiet cores)."""
    from zoo.pipeline import export_run

    out = tmp_path_factory.mktemp("phone") / "export"
    quantizations = (INT8_EMBEDDINGS, "dynamic")
    export_run(str(translator_run[0]), ("tflite",), quantizations, str(out), 2, keep_float=False)
    return out


@pytest.fixture(scope="module")
def phone(exported, tmp_path_factory):
    """The export added as the export-only model 'tiny-phone', keeping the int8 file."""
    top = tmp_path_factory.mktemp("phone-catalog")
    registry_file, root = top / "registry.yaml", top / "saved_models"
    add_model(
        exported, "tiny-phone", registry_file=registry_file, root=root, exclude=(DYNAMIC_FILE,)
    )
    return registry_file, root


@pytest.mark.slow
def test_a_phone_build_holds_no_float_file_and_lists_only_what_it_holds(exported):
    manifest = json.loads((exported / "export.json").read_text())
    assert [entry["file"] for entry in manifest["tflite"]] == [PHONE_FILE, DYNAMIC_FILE]
    assert not (exported / "model.tflite").exists()
    on_disk = sorted(path.name for path in exported.iterdir() if path.name != "export.json")
    assert sorted(record["path"] for record in manifest["files"]) == on_disk
    assert all(0 < entry["size_of_float"] < 1 for entry in manifest["tflite"])
    card = json.loads((exported / "card.json").read_text())
    assert "model.tflite" not in card["quality"] and PHONE_FILE in card["quality"]
    # its parity is its first file's, in both LiteRT APIs
    assert set(card["parity"]["backends"]) == {
        f"tflite/{INT8_EMBEDDINGS}/interpreter",
        f"tflite/{INT8_EMBEDDINGS}/compiled_model",
    }


@pytest.mark.slow
def test_the_entry_holds_the_export_and_the_files_own_whole_split_bleu(phone, exported):
    registry_file, root = phone
    [entry] = read_catalog_file(registry_file, root)
    assert entry.export_only and "model.keras" not in entry.artifacts
    assert {"export.json", PHONE_FILE, "src_vocab.txt", "tgt_vocab.txt"} <= set(entry.artifacts)
    assert DYNAMIC_FILE not in entry.artifacts
    quality = json.loads((exported / "card.json").read_text())["quality"]
    assert quality["whole_split"] and quality["key"] == "bleu"
    assert entry.metrics["bleu"] == quality[PHONE_FILE]
    assert entry.metrics["keras_bleu"] == quality["keras"]
    assert entry.metrics["beam_width"] == 2 and entry.metrics["test_sentences"] == quality["pairs"]
    assert entry.summary()["kind"] == "export"
    # the export's card is the entry's card, as export.json lists it
    assert (root / "tiny-phone" / "card.md").read_bytes() == (exported / "card.md").read_bytes()


@pytest.mark.slow
def test_translate_by_name_runs_the_kept_file_and_training_commands_refuse(
    phone, exported, monkeypatch, tmp_path
):
    use_catalog(monkeypatch, tmp_path, *phone)
    expected = zoo.load_export(exported, INT8_EMBEDDINGS).translate(SOURCES)
    runner = CliRunner()
    for source, translation in zip(SOURCES, expected, strict=True):
        result = runner.invoke(cli, ["translate", "tiny-phone", source])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == translation
    assert zoo.load("tiny-phone").translate(SOURCES) == expected
    info = runner.invoke(cli, ["models", "info", "tiny-phone"])
    assert "export only: TFLite on LiteRT" in info.output
    refused = runner.invoke(cli, ["export", "tiny-phone", "--format", "tflite"])
    assert refused.exit_code == 2, refused.output
    [line] = refused.output.strip().splitlines()
    assert "export-only model" in line and "zoo translate" in line
    assert runner.invoke(cli, ["models", "verify", "tiny-phone"]).output.strip() == "ok"


@pytest.mark.slow
def test_evaluate_reproduces_the_registry_bleu_of_the_file_and_writes_nothing(
    phone, exported, monkeypatch, tmp_path
):
    registry_file, root = phone
    use_catalog(monkeypatch, tmp_path, registry_file, root)
    before = sorted((path.name, path.stat().st_mtime_ns) for path in exported.iterdir())
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", "tiny-phone", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    [entry] = read_catalog_file(registry_file, root)
    assert metrics["bleu"] == entry.metrics["bleu"]  # the card's figure, measured again
    assert (
        metrics["beam_width"] == 2 and metrics["test_sentences"] == entry.metrics["test_sentences"]
    )
    # by path: the file the folder lists first; then greedy
    quality = json.loads((exported / "card.json").read_text())["quality"]
    first_file = runner.invoke(cli, ["evaluate", str(exported), "--json"])
    assert first_file.exit_code == 0, first_file.output
    assert json.loads(first_file.output)["bleu"] == quality[PHONE_FILE]
    greedy = runner.invoke(cli, ["evaluate", str(exported), "--beam", "1", "--json"])
    assert greedy.exit_code == 0, greedy.output
    assert json.loads(greedy.output)["bleu"] == json.loads(greedy.output)["bleu_greedy"]
    assert sorted((path.name, path.stat().st_mtime_ns) for path in exported.iterdir()) == before
    too_wide = runner.invoke(cli, ["evaluate", "tiny-phone", "--beam", "3"])
    assert too_wide.exit_code == 2 and len(too_wide.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_add_refuses_an_export_it_cannot_list_in_one_line_and_leaves_nothing(exported, tmp_path):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"

    def refused(folder, match, exclude=(DYNAMIC_FILE,)):
        with pytest.raises(CatalogError, match=match):
            add_model(folder, "bad", registry_file=registry_file, root=root, exclude=exclude)
        assert not registry_file.exists()
        assert not root.exists() or not list(root.iterdir())

    refused(exported, r"keeps one TFLite file, this one would keep 2", exclude=())
    copy = shutil.copytree(exported, tmp_path / "copy")
    (copy / "notes.txt").write_text("mine\n", encoding="utf-8")  # not the export's file
    with pytest.raises(Exception, match=r"notes.txt is not listed"):
        add_model(copy, "bad", registry_file=registry_file, root=root, exclude=(DYNAMIC_FILE,))
    (copy / "notes.txt").unlink()
    (copy / "card.json").unlink()
    refused(copy, r"no card.json")


def test_an_entry_without_model_keras_needs_export_json(tmp_path):
    entry = {
        "task": "translator",
        "recipe": {"name": "tiny", "sha256": "0" * 64},
        "licenses": {"data": "mine", "model": "mine"},
        "artifacts": {
            name: {"uri": f"phone/{name}", "sha256": "0" * 64, "size": 1}
            for name in ("recipe.yaml", "src_vocab.txt", "tgt_vocab.txt", PHONE_FILE)
        },
    }
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump({"models": {"phone": entry}}), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"models.phone.artifacts.model.keras: missing"):
        read_catalog_file(registry_file, tmp_path)
    entry["artifacts"]["export.json"] = {"uri": "phone/export.json", "sha256": "0" * 64, "size": 1}
    registry_file.write_text(yaml.safe_dump({"models": {"phone": entry}}), encoding="utf-8")
    [parsed] = read_catalog_file(registry_file, tmp_path)
    assert parsed.export_only and parsed.summary()["kind"] == "export"
    del entry["artifacts"]["tgt_vocab.txt"]
    registry_file.write_text(yaml.safe_dump({"models": {"phone": entry}}), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"artifacts.tgt_vocab.txt: missing"):
        read_catalog_file(registry_file, tmp_path)
