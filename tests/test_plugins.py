"""Plugins found through the ``zoo.plugins`` entry point group, installed for real.

The fixture packages in tests/fixtures are pip-installed into a temporary directory
(never the global site-packages) and used by fresh Python processes that have that
directory on PYTHONPATH; the test process itself never sees them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from chapter import CHAPTER_LAYERS

from zoo import registry

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLUGINS = ("zoo_plugin_example", "zoo_plugin_broken")
TIMEOUT = 180


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """A directory holding the two fixture plugins, installed by pip with their metadata."""
    sources, site = (
        tmp_path_factory.mktemp("plugin-sources"),
        tmp_path_factory.mktemp("plugin-site"),
    )
    # Build from copies: setuptools writes build/ and *.egg-info next to the sources.
    copies = [shutil.copytree(FIXTURES / name, sources / name) for name in PLUGINS]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
        str(site),
        *map(str, copies),
    ]
    installed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return site


def plugin_env(site):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(site), str(REPO_ROOT), env.get("PYTHONPATH")])
    )
    env.pop("PYTHONWARNINGS", None)
    return env


def run_python(site, *args):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=plugin_env(site),
        cwd=site,
    )


CHECK = textwrap.dedent(
    """
    import json, warnings
    import numpy as np
    import keras  # imported first, so that only plugin loading happens below
    from zoo import registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = registry.layers.entries()
        registry.layers.names()  # plugins load once: no second warning
        "gru" in registry.layers

    scale = registry.layers.get("example_scale")
    layer = scale(initial_scale=3.0)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    y = layer(x)
    print(json.dumps({
        "entries": [
            [e.name, e.provider, f"{e.obj.__module__}.{e.obj.__qualname__}"] for e in entries
        ],
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
        "failures": registry.plugin_failures,
        "keras_registered": keras.saving.get_registered_object("zoo>ExampleScale") is scale,
        "keras_name": keras.saving.get_registered_name(scale),
        "trainable_weights": len(layer.trainable_weights),
        "output": np.asarray(y).tolist(),
        "expected": (3.0 * x).tolist(),
    }))
    """
)


@pytest.fixture(scope="module")
def report(plugin_site):
    """What a fresh process with the plugins installed sees in the registry."""
    checked = run_python(plugin_site, "-c", CHECK)
    assert checked.returncode == 0, checked.stderr[-4000:]
    return json.loads(checked.stdout.strip().splitlines()[-1])


def test_the_plugins_are_installed_distributions_with_their_entry_points(plugin_site):
    for distribution, entry_point in [
        ("zoo_plugin_example", "example"),
        ("zoo_plugin_broken", "broken"),
    ]:
        (dist_info,) = plugin_site.glob(f"{distribution}-0.1.0.dist-info")
        entry_points = (dist_info / "entry_points.txt").read_text()
        assert "[zoo.plugins]" in entry_points and f"{entry_point} = {distribution}" in entry_points


def test_the_test_process_does_not_see_the_plugins():
    assert "example_scale" not in registry.layers
    assert not registry.plugin_failures


def test_plugin_layer_is_registered_under_its_distribution_name(report):
    entries = {name: (provider, qualname) for name, provider, qualname in report["entries"]}
    assert entries["example_scale"] == ("zoo-plugin-example", "zoo_plugin_example.ExampleScale")


def test_plugin_layer_is_a_keras_serializable_that_works(report):
    assert report["keras_registered"] is True
    assert report["keras_name"] == "zoo>ExampleScale"
    assert report["trainable_weights"] == 1
    assert report["output"] == report["expected"]


def test_broken_plugin_gives_exactly_one_warning_and_the_rest_still_loads(report):
    assert len(report["warnings"]) == 1, report["warnings"]
    ((category, message),) = report["warnings"]
    assert category == "RuntimeWarning"
    assert "'broken'" in message and "zoo-plugin-broken" in message
    assert "not_installed_anywhere" in message  # the ImportError's own words
    assert report["failures"] == [message]
    providers = {name: provider for name, provider, _ in report["entries"]}
    assert CHAPTER_LAYERS <= set(providers)
    assert {providers[name] for name in CHAPTER_LAYERS} == {"zoo"}
    assert "example_scale" in providers  # a broken plugin does not stop the others


@pytest.mark.slow  # a second fresh process; the registry it lists is checked by `report`
def test_cli_lists_the_plugin_layer_as_json(plugin_site):
    pytest.importorskip("zoo.cli.main")
    listed = run_python(plugin_site, "-m", "zoo.cli.main", "list", "layers", "--json")
    assert listed.returncode == 0, listed.stderr[-4000:]
    rows = json.loads(listed.stdout)  # the broken plugin's warning must not reach stdout
    assert {
        "name": "example_scale",
        "class": "zoo_plugin_example.ExampleScale",
        "provider": "zoo-plugin-example",
    } in rows
    assert all(set(row) == {"name", "class", "provider"} for row in rows)
    assert {
        row["name"]: row["provider"] for row in rows if row["name"] in CHAPTER_LAYERS
    } == dict.fromkeys(CHAPTER_LAYERS, "zoo")
    assert listed.stderr.count("zoo-plugin-broken") == 1


def test_what_zoo_defines_is_zoo_s_even_when_a_plugin_imports_it_first(monkeypatch):
    """A plugin that imports ``zoo.recipe`` may be the first to import
    ``zoo.export.formats``: zoo's formats must still be zoo's, the plugin's its own."""
    from zoo.export.formats import SavedModelFormat

    table = registry.Registry("thing", needs_layers=False)
    monkeypatch.setattr(registry, "_current_provider", "zoo-plugin-example")
    table.add("saved_model", SavedModelFormat())
    plugin_class = type("PluginThing", (), {"__module__": "zoo_plugin_example.things"})
    table.add("plugin_thing", plugin_class)
    assert {entry.name: entry.provider for entry in table.entries()} == {
        "plugin_thing": "zoo-plugin-example",
        "saved_model": "zoo",
    }
