"""An install that works outside the clone: the wheel holds the recipes, registry.yaml
and saved_models/ (the clone's top-level names link into the package), and, installed
into a fresh virtual environment, runs from another folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300
NOT_SOURCES = shutil.ignore_patterns(
    ".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".venv", "tests"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy (setuptools writes build/ beside the
    sources), with a model folder of nested files added to saved_models/."""
    source = tmp_path_factory.mktemp("source") / "zoo"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=NOT_SOURCES)
    nested = source / "saved_models" / "nested-model" / "export" / "saved_model" / "variables"
    nested.mkdir(parents=True)
    (nested / "variables.index").write_bytes(b"index")
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "--no-index", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*command, "-w", str(out)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("zoo-*.whl")
    return path


def test_the_top_level_names_link_into_the_package():
    for name, target in [
        ("recipes", "zoo/recipes"),
        ("registry.yaml", "zoo/registry.yaml"),
        ("saved_models", "zoo/saved_models"),
    ]:
        assert (REPO_ROOT / name).is_symlink()
        assert (REPO_ROOT / name).resolve() == (REPO_ROOT / target).resolve()


@pytest.mark.slow
def test_the_wheel_holds_the_recipes_the_registry_and_the_shipped_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = sorted(path.name for path in (REPO_ROOT / "recipes").glob("*.yaml"))
    assert {"lm-lstm.yaml", "seq2seq-attn.yaml"} <= set(recipes)
    assert {f"zoo/recipes/{name}" for name in recipes} <= names
    assert "zoo/registry.yaml" in names
    shipped = {
        "zoo/saved_models/" + path.relative_to(REPO_ROOT / "saved_models").as_posix()
        for path in (REPO_ROOT / "saved_models").rglob("*")
        if path.is_file()
    }
    assert shipped and shipped <= names
    assert "zoo/saved_models/nested-model/export/saved_model/variables/variables.index" in names
    assert not any(name.startswith(("recipes/", "saved_models/", "tests/")) for name in names)


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_runs_from_another_folder(wheel, tmp_path):
    environment = tmp_path / "venv"
    # the system's packages (TensorFlow) are visible, so nothing is downloaded
    venv.create(environment, system_site_packages=True, with_pip=True)
    python = environment / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["ZOO_HOME"] = str(tmp_path / "home")
    install = [str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index"]
    installed = subprocess.run(
        [*install, "--disable-pip-version-check", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    zoo = str(environment / "bin" / "zoo")

    def run(*args):
        return subprocess.run(
            [zoo, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=elsewhere
        )

    where = subprocess.run(
        [str(python), "-c", "import zoo; print(zoo.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    assert str(environment) in where.stdout, where.stdout + where.stderr
    listed = run("list", "recipes")
    assert listed.returncode == 0 and "lm-lstm" in listed.stdout, listed.stderr
    assert run("models", "list").returncode == 0
    trained = run(
        "run",
        "recipe",
        "lm-gru",
        "--out",
        "tiny-run",
        "--set",
        "train.epochs=1",
        "--set",
        "model.layers[0].units=16",
        "--set",
        "data.num_steps=16",
        "--set",
        "export.formats=[]",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "test perplexity" in trained.stdout  # the summary a person reads
    for noise in ("cuda", "cuInit", "oneDNN", "absl::InitializeLog", "Downloading and preparing"):
        assert noise not in trained.stderr + trained.stdout
    assert (elsewhere / "tiny-run" / "model.keras").is_file()
