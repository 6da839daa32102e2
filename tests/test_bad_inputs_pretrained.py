"""Bad inputs of the pretrained-model catalog (issue 24): registries (alias bombs,
nesting, size, types), pulls (a FIFO, colliding and oversized archives, bad limits) and
`zoo models add`'s metrics.json. Each is one line, exit 2, and changes nothing in its
folder; a pull's cache is outside it (``$ZOO_HOME`` beside the folder). The machinery
is in ``bad_inputs.py``.
"""

import hashlib
import os
import shutil

import pytest
import yaml
from bad_inputs import Case, alias_bomb, check_case, write
from click.testing import CliRunner
from test_pretrained_pull import tar_gz

from zoo.cli.main import cli

REGISTRY = ["--registry", "{tmp}/r.yaml"]
PULL = [*REGISTRY, "models", "pull", "mine"]
ADD = ["models", "add", "{run}", "--name", "mine"]
CACHE = {"ZOO_HOME": "{tmp}/../home"}  # a pull may leave its lock file there
ADD_INTO = {"ZOO_SHIPPED_REGISTRY": "{tmp}/registry.yaml", "ZOO_SAVED_MODELS": "{tmp}/saved"}
ZEROS = "0" * 64


def entry(**changes) -> dict:
    """A valid local entry of an autoregressive model, with ``changes``."""
    return {
        "task": "autoregressive",
        "recipe": {"name": "ar-mlp-sine", "sha256": ZEROS},
        "licenses": {"data": "synthetic", "model": "Apache-2.0"},
        "artifacts": {
            name: {"uri": f"mine/{name}", "sha256": ZEROS, "size": 1}
            for name in ("model.keras", "recipe.yaml")
        },
        **changes,
    }


def registry(**changes) -> str:
    return yaml.safe_dump({"models": {"mine": entry(**changes)}}, sort_keys=False)


def bomb_under_recipe() -> str:
    """A valid entry whose ``recipe:`` holds a billion laughs."""
    lines = registry().splitlines()
    at = lines.index("    recipe:") + 1
    bomb = ["      " + line for line in alias_bomb().splitlines()]
    return "\n".join(lines[:at] + bomb + lines[at:]) + "\n"


def remote_registry(archive: bytes) -> str:
    """An entry pulled by file:// URIs whose first artifact is ``archive``, served from
    ``{tmp}/a.tar.gz``; the pull fails on it before any other file."""
    artifacts = {
        "export/saved_model/": {
            "uri": "file://{tmp}/a.tar.gz",
            "sha256": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
        }
    }
    for name in ("model.keras", "recipe.yaml"):
        artifacts[name] = {"uri": f"file://{{tmp}}/{name}", "sha256": ZEROS, "size": 1}
    return registry(artifacts=artifacts)


def make_fifo(run):
    # beside the case's folder, not in it: reading the folder's snapshot would block
    os.mkfifo(run.parent.parent / "fifo")


COLLIDING = tar_gz({"a": b"a file", "a/b": b"a file under it"})
BOMB = tar_gz({"zeros.bin": bytes(5_000_000)})
FIFO_REGISTRY = registry(
    artifacts={
        name: {"uri": "file://{tmp}/../fifo", "sha256": ZEROS, "size": 1}
        for name in ("model.keras", "recipe.yaml")
    }
)

CASES = [
    # ---------------------------------------------------------------- registries
    Case(
        "registry-billion-laughs-under-recipe",
        [*REGISTRY, "models", "info", "mine"],
        "r.yaml: more than 100,000 values once its YAML aliases are expanded",
        files={"r.yaml": bomb_under_recipe()},
    ),
    Case(
        "registry-alias-loop",
        [*REGISTRY, "models", "list"],
        "YAML aliases are expanded (or an alias refers to itself)",
        files={"r.yaml": "models: &a [*a]\n"},
    ),
    Case(
        "registry-nested-100-deep",
        [*REGISTRY, "models", "list"],
        "r.yaml: nested more than 64 levels deep",
        files={"r.yaml": "models: " + "[" * 100 + "]" * 100 + "\n"},
    ),
    Case(
        "registry-bomb-while-generating-a-model-by-name",
        ["generate", "lm-lstm-timemachine", "--prefix", "time"],
        "r.yaml: more than 100,000 values",
        files={"r.yaml": bomb_under_recipe()},
        env={"ZOO_REGISTRY": "{tmp}/r.yaml"},
    ),
    Case(
        "registry-too-large",
        [*REGISTRY, "models", "list"],
        "bytes; a registry is at most 1,048,576",
        files={"r.yaml": "# " + "x" * (1 << 20) + "\n"},
    ),
    Case(
        "registry-not-utf8",
        [*REGISTRY, "models", "list"],
        "r.yaml: not UTF-8 text",
        files={"r.yaml": b"models: {\xff: 1}\n"},
    ),
    Case(
        "registry-python-tag",
        [*REGISTRY, "models", "list"],
        "r.yaml: not valid YAML",
        files={"r.yaml": "models: !!python/object/apply:os.system ['touch pwned']\n"},
    ),
    Case(
        "registry-a-list",
        [*REGISTRY, "models", "list"],
        "r.yaml: expected a mapping with one key, models",
        files={"r.yaml": "[models]\n"},
    ),
    Case(
        "registry-size-not-an-integer",
        [*REGISTRY, "models", "list"],
        "models.mine.artifacts.model.keras.size: expected an integer, got 'big'",
        files={
            "r.yaml": registry(
                artifacts={
                    "model.keras": {"uri": "mine/model.keras", "sha256": ZEROS, "size": "big"},
                    "recipe.yaml": {"uri": "mine/recipe.yaml", "sha256": ZEROS, "size": 1},
                }
            )
        },
    ),
    Case(
        "registry-sha256-read-as-a-number",
        [*REGISTRY, "models", "list"],
        "models.mine.recipe.sha256: expected a string, got 0",
        files={"r.yaml": registry().replace(f"'{ZEROS}'", ZEROS)},
    ),
    Case(
        "registry-key-not-a-string",
        [*REGISTRY, "models", "list"],
        "models.mine.7: unknown field",
        files={"r.yaml": registry().replace("  mine:\n", "  mine:\n    7: seven\n")},
    ),
    Case(
        "registry-unpacked-size-of-a-file",
        [*REGISTRY, "models", "list"],
        "models.mine.artifacts.model.keras.unpacked_size: only a folder artifact",
        files={
            "r.yaml": registry(
                artifacts={
                    "model.keras": {
                        "uri": "mine/model.keras",
                        "sha256": ZEROS,
                        "size": 1,
                        "unpacked_size": 1,
                    },
                    "recipe.yaml": {"uri": "mine/recipe.yaml", "sha256": ZEROS, "size": 1},
                }
            )
        },
    ),
    # ---------------------------------------------------------------- pulls
    Case(
        "pull-file-uri-to-a-fifo",
        PULL,
        "is not a regular file; refused",
        files={"r.yaml": FIFO_REGISTRY},
        damage=make_fifo,
        env=CACHE,
    ),
    Case(
        "pull-archive-members-collide",
        PULL,
        "archive members collide: 'a' is both a file and a folder; refused",
        files={"r.yaml": remote_registry(COLLIDING), "a.tar.gz": COLLIDING},
        env=CACHE,
    ),
    Case(
        "pull-archive-bomb",
        PULL,
        "unpacks to more than",
        files={"r.yaml": remote_registry(BOMB), "a.tar.gz": BOMB},
        env=CACHE,
    ),
    Case(
        "pull-minimum-rate-not-a-number",
        PULL,
        "ZOO_DOWNLOAD_MIN_RATE: expected a positive number, got 'fast'",
        files={"r.yaml": remote_registry(COLLIDING), "a.tar.gz": COLLIDING},
        env={**CACHE, "ZOO_DOWNLOAD_MIN_RATE": "fast"},
    ),
    # ---------------------------------------------------------------- zoo models add
    Case(
        "add-metrics-not-json",
        ADD,
        "metrics.json: not valid JSON",
        damage=write("metrics.json", "{"),
        env=ADD_INTO,
    ),
    Case(
        "add-metrics-a-list",
        ADD,
        "metrics.json: expected a mapping, got list",
        damage=write("metrics.json", "[1]"),
        env=ADD_INTO,
    ),
    Case(
        "add-metrics-seconds-a-string",
        ADD,
        "metrics.json: train_seconds: expected an integer or a number, got str",
        damage=write("metrics.json", '{"train_seconds": "long"}'),
        env=ADD_INTO,
    ),
    Case(
        "add-metrics-chapter-example-damaged",
        ADD,
        "chapter_examples['go .']: exact: expected true or false, got str",
        damage=write(
            "metrics.json",
            '{"chapter_examples": {"go .": {"translation": "va !", "expected": "va !", '
            '"exact": "yes"}}}',
        ),
        env=ADD_INTO,
    ),
    Case(
        "add-into-a-registry-bomb",
        ADD,
        "registry.yaml: more than 100,000 values",
        files={"registry.yaml": alias_bomb()},
        env=ADD_INTO,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_input_is_one_line_and_changes_nothing(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)


def test_a_user_registry_nested_100k_deep_leaves_generating_from_a_run_working(
    trained_run, tmp_path, monkeypatch
):
    # PyYAML gives up on the nesting at about 500 levels, after a few seconds; a run
    # directory needs no catalog, so the broken one is passed over
    run = shutil.copytree(trained_run[1], tmp_path / "run")
    broken = tmp_path / "r.yaml"
    broken.write_text("models: " + "[" * 100_000 + "]" * 100_000 + "\n")
    monkeypatch.setenv("ZOO_REGISTRY", str(broken))
    generated = CliRunner().invoke(cli, ["generate", str(run), "--prefix", "time", "--length", "5"])
    assert generated.exit_code == 0, generated.stderr
    assert generated.stdout.startswith("time") and generated.stderr == ""
