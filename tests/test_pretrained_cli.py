"""The catalog from the command line: sources and clashes, a plugin that adds a model
(installed for real, as in test_plugins.py), and listing commands that answer without
importing TensorFlow, whose start-up lines never reach the terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from zoo import registry
from zoo.cli.main import cli
from zoo.pretrained import catalog
from zoo.pretrained.artifacts import verify

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "zoo_plugin_models"
TIMEOUT = 180


def entry(name="mine", task="language_model"):
    return {
        "task": task,
        "recipe": {"name": "lm-gru", "sha256": "0" * 64},
        "licenses": {"data": "public domain", "model": "Apache-2.0"},
        "artifacts": {
            path: {"uri": f"{name}/{path}", "sha256": "0" * 64, "size": 1}
            for path in ("model.keras", "recipe.yaml", "vocab.txt")
        },
    }


@pytest.fixture
def home(tmp_path, monkeypatch):
    shipped = tmp_path / "registry.yaml"
    shipped.write_text(yaml.safe_dump({"models": {"shipped-lm": entry("shipped-lm")}}))
    monkeypatch.setenv("ZOO_SHIPPED_REGISTRY", str(shipped))
    monkeypatch.setenv("ZOO_SAVED_MODELS", str(tmp_path / "saved_models"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "ZOO_REGISTRY", ""
    )  # restored after the test, unlike a delenv of an unset name
    return tmp_path


def test_the_shipped_registry_is_valid_and_its_models_verify():
    shipped = catalog.read_catalog_file(catalog.SHIPPED_REGISTRY, catalog.SHIPPED_ROOT)
    assert [line for model in shipped for line in verify(model)] == []


def test_a_users_registry_adds_models_and_a_clash_is_one_line(home):
    mine = home / "mine.yaml"
    mine.write_text(yaml.safe_dump({"models": {"mine": entry()}}))
    listed = CliRunner().invoke(cli, ["--registry", str(mine), "models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row["provider"] for row in json.loads(listed.output)}
    assert rows == {"shipped-lm": "zoo", "mine": f"user ({mine})"}
    mine.write_text(yaml.safe_dump({"models": {"shipped-lm": entry("shipped-lm")}}))
    clash = CliRunner().invoke(cli, ["--registry", str(mine), "models", "list"])
    assert clash.exit_code == 2
    (line,) = clash.output.strip().splitlines()
    assert "'shipped-lm' is already defined by zoo" in line and str(mine) in line


def test_a_plugin_catalog_clashing_with_a_shipped_model_is_refused(home, monkeypatch):
    plugin_file = home / "plugin.yaml"
    plugin_file.write_text(yaml.safe_dump({"models": {"shipped-lm": entry("shipped-lm")}}))
    monkeypatch.setattr(catalog, "_plugin_catalogs", [(plugin_file, None, "zoo-plugin-x")])
    with pytest.raises(catalog.CatalogError, match="zoo-plugin-x .* cannot define it again"):
        catalog.load_catalog()


def test_the_listed_datasets_are_those_zoo_data_registers():
    import zoo.data  # noqa: F401

    builtin = sorted(e.name for e in registry.datasets.entries() if e.provider == "zoo")
    assert builtin == sorted(registry.BUILTIN_DATASETS)


LISTING = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    from zoo.cli.main import cli

    for command in (["list", "recipes"], ["data", "list"], ["models", "list"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
    heavy = ("tensorflow", "keras", "tensorflow_datasets")
    print(json.dumps({"imported": [name for name in heavy if name in sys.modules]}))
    """
)


def python(*args, env=None, cwd=None):
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [environment.pop("PLUGINS", None), str(REPO_ROOT)])
    )
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment,
        cwd=cwd,
    )


def test_listing_commands_import_no_tensorflow(tmp_path):
    """Listing recipes, datasets and models reads files and registries, never TensorFlow,
    Keras or TFDS (whose imports take seconds): how fast they answer is a benchmark's to
    measure, not a test's."""
    listed = python("-c", LISTING, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert json.loads(listed.stdout) == {"imported": []}


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    source = shutil.copytree(FIXTURE, tmp_path_factory.mktemp("source") / FIXTURE.name)
    site = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "--disable-pip-version-check", "--quiet", "--target", str(site)]
    installed = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return site


@pytest.mark.slow
def test_a_plugin_adds_a_model_and_tensorflow_start_up_stays_quiet(plugin_site, tmp_path):
    # With a plugin installed, plugins load with the built-in layers: TensorFlow is
    # imported, and none of its start-up lines may reach stderr.
    listed = python(
        "-m",
        "zoo.cli.main",
        "models",
        "list",
        "--json",
        env={"PLUGINS": str(plugin_site), "ZOO_HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert listed.stderr == ""
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["plugin-lm"]["provider"] == "zoo-plugin-models"
    assert rows["plugin-lm"]["folder"] == str(plugin_site / "zoo_plugin_models" / "plugin-lm")
