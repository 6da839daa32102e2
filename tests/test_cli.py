"""The click CLI: fast help, listings, one-line errors with exit code 2."""

import json
import subprocess
import sys

from chapter import CHAPTER_LAYERS
from click.testing import CliRunner

from zoo.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_help_does_not_import_tensorflow():
    code = (
        "import sys; from zoo.cli.main import cli; "
        "assert 'tensorflow' not in sys.modules; assert 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", "run", "recipe", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--resume" in result.stdout


def test_list_layers_json_names_every_chapter_layer():
    result = invoke("list", "layers", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = {row["name"] for row in rows}
    assert CHAPTER_LAYERS <= names
    lstm = next(row for row in rows if row["name"] == "lstm")
    assert lstm == {"name": "lstm", "class": "zoo.layers.lstm.LSTM", "provider": "zoo"}


def test_list_layers_table():
    result = invoke("list", "layers")
    assert result.exit_code == 0
    assert any(
        line.split()[:3] == ["gru_cell", "zoo.layers.gru_cell.GRUCell", "zoo"]
        for line in result.stdout.splitlines()
    )


def test_tables_keep_their_columns_aligned_past_a_long_name():
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(len(line.split()[0]) > 24 for line in lines)  # the phone translator's name
    task_columns = {line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(task_columns) == 1, lines  # every task starts in the same column


def test_list_recipes_names_the_chapter_recipes():
    result = invoke("list", "recipes", "--json")
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"lm-rnn", "lm-gru", "lm-lstm", "lm-deep-lstm", "ar-mlp-sine"} <= names


def assert_one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zoo: error: ") and fragment in lines[0], lines[0]


def test_broken_recipes_exit_2_with_one_line(tmp_path, small_recipe):
    path = small_recipe()
    assert_one_line_error(
        invoke(
            "run",
            "recipe",
            str(path),
            "--set",
            "model.layers[0].units=abc",
            "--out",
            str(tmp_path / "r"),
        ),
        "model.layers[0].units: expected an integer, got 'abc'",
    )
    assert_one_line_error(
        invoke("run", "recipe", str(path), "--set", "model.layers[0].name=lstmm"),
        "unknown layer 'lstmm'; did you mean 'lstm'",
    )
    assert_one_line_error(invoke("run", "recipe", "lm-lsmt"), "unknown recipe 'lm-lsmt'")
    for key in ("recurrent_dropout", "weight_dropout"):  # ranged by the recipe, at their path
        assert_one_line_error(
            invoke(
                "run",
                "recipe",
                str(path),
                "--set",
                f"model.layers[0].{key}=1.5",
                "--out",
                str(tmp_path / "r"),
            ),
            f"model.layers[0].{key}: must be below 1.0, got 1.5",
        )
    assert_one_line_error(
        invoke("run", "recipe", str(tmp_path / "nope.yaml")), "no such recipe file"
    )
    assert not (tmp_path / "r").exists()  # nothing was created for a recipe that failed its check


def test_missing_run_directory_is_one_line(tmp_path):
    assert_one_line_error(invoke("evaluate", str(tmp_path / "nothing")), "not a run directory")
    assert_one_line_error(
        invoke("generate", str(tmp_path / "nothing"), "--prefix", "a"), "not a run directory"
    )


def test_missing_user_corpus_is_one_line(tmp_path, small_recipe):
    path = small_recipe()
    result = invoke(
        "run",
        "recipe",
        str(path),
        "--set",
        f"data.source={tmp_path / 'absent.txt'}",
        "--out",
        str(tmp_path / "r"),
    )
    assert_one_line_error(result, "absent.txt")
    assert not (tmp_path / "r").exists()  # a run whose data failed leaves nothing to block a retry


def test_an_unexpected_error_is_one_line_with_exit_1(monkeypatch):
    import zoo.pipeline

    def fail(*args, **kwargs):
        raise MemoryError("cannot allocate 48 TB\nfor a kernel " + "x" * 2000)

    monkeypatch.setattr(zoo.pipeline, "generate_from_run", fail)
    result = invoke("generate", "somewhere", "--prefix", "a")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("zoo: error: out of memory (MemoryError): cannot allocate 48 TB for")
    assert line.endswith("… (ZOO_DEBUG=1 shows the traceback)") and len(line) < 600

    monkeypatch.setenv("ZOO_DEBUG", "1")  # the traceback, for a bug report
    result = invoke("generate", "somewhere", "--prefix", "a")
    assert isinstance(result.exception, MemoryError)
    result = invoke("evaluate", "nowhere")  # neither a run nor a pretrained model's name
    assert type(result.exception).__name__ == "CatalogError"


def test_a_usage_error_is_one_line_and_a_bare_group_shows_its_help():
    assert_one_line_error(invoke("run", "recipe"), "Missing argument 'RECIPE'")
    assert_one_line_error(invoke("generate", "x", "--length", "0"), "Invalid value for '--length'")
    for args in ((), ("run",)):
        result = invoke(*args)
        assert "Usage:" in result.output and "zoo: error" not in result.output
