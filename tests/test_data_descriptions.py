import json

import pytest
from test_data_support import data_dir  # noqa: F401  (fixture)

from zoo.data import describe, list_datasets
from zoo.data.shipped_files import SHA256
from zoo.registry import RegistryError


def test_the_shipped_datasets_are_listed():
    assert {"time_machine", "fra_eng", "sine"} <= set(list_datasets())


@pytest.mark.slow
def test_time_machine_description_has_the_chapter_counts(data_dir):  # noqa: F811
    description = describe("time_machine")
    json.dumps(description)
    assert description["num_tokens"]["char"] == 173428
    assert description["vocab_size"]["char"] == 28
    assert description["source_sha256"] == SHA256["timemachine.txt"]
    assert {name: split["examples"] for name, split in description["splits"].items()} == {
        "train": 1,
        "validation": 1,
        "test": 1,
    }
    assert sum(split["tokens"]["char"] for split in description["splits"].values()) == 173428


@pytest.mark.slow
def test_fra_eng_description_shows_split_sizes_and_no_shared_english_sentence(data_dir):  # noqa: F811
    description = describe("fra_eng")
    json.dumps(description)
    examples = {name: split["examples"] for name, split in description["splits"].items()}
    assert sum(examples.values()) == description["num_examples"] == 167130
    assert examples["test"] >= 5000
    assert description["train_test_disjoint"] is True
    assert description["english_sentences_shared_between_splits"]["train_test"] == 0
    assert description["source_sha256"] == SHA256["fra-eng.zip"]
    assert description["vocab_size"]["en"] > 4 and description["vocab_size"]["fr"] > 4


def test_sine_description():
    description = describe("sine")
    assert description["examples"] == 996 and description["tau"] == 4
    json.dumps(description)


def test_an_unknown_dataset_suggests_close_names():
    with pytest.raises(RegistryError, match="time_machine"):
        describe("time_machin")


@pytest.mark.slow  # a real process preparing the dataset from nothing (seconds)
def test_data_show_json_is_json_on_a_fresh_data_directory(tmp_path):
    """The first `zoo data show NAME --json` prepares the dataset: whatever TFDS prints
    then must not reach stdout, which is the JSON alone."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    environment = {
        **os.environ,
        "ZOO_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", "data", "show", "time_machine", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["name"] == "time_machine"


def test_data_show_counts_a_tsv_whose_sentences_differ_in_length(tmp_path):
    """Length buckets make batches of different widths (issue 24: they were joined into
    larger batches, "Cannot batch tensors..."): every token is counted, the same with
    buckets as without, each sentence cut to num_steps with its <eos>."""
    from click.testing import CliRunner

    from zoo.cli.main import cli

    num_steps = 12
    sources = [" ".join(["word"] * (1 + index % 17)) + " ." for index in range(300)]
    targets = [" ".join(["mot"] * (1 + index % 5)) + " !" for index in range(300)]
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "".join(f"{source}\t{target}\n" for source, target in zip(sources, targets, strict=True)),
        encoding="utf-8",
    )

    def counted(bucket):
        result = CliRunner().invoke(
            cli,
            ["data", "show", str(path), "--json", "--set", f"data.num_steps={num_steps}"]
            + ["--set", f"data.bucket={bucket}"],
        )
        assert result.exit_code == 0, result.output
        splits = json.loads(result.output)["splits"].values()
        return [sum(split[key] for split in splits) for key in ("source_tokens", "target_tokens")]

    def tokens(sentences):  # words and the mark, then <eos>, cut to num_steps
        return sum(min(len(sentence.split()) + 1, num_steps) for sentence in sentences)

    assert counted("true") == counted("false") == [tokens(sources), tokens(targets)]
