"""A language model's pretraining stage (recipe section ``pretrain``): the corpus, the
endless stream it is read from, the stage's own checkpoints, starting training from its
weights, resume after ``kill -9`` in the middle of it, and bad sources."""

import collections
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.data.language_modeling import (
    FRA_ENG_ENGLISH,
    language_model_data,
    load_pretraining_text,
    pretraining_data,
)
from zoo.data.shipped_files import shipped_file
from zoo.pipeline import run_recipe
from zoo.text.formats import LanguageModelText

SHIPPED_TEXT = shipped_file("timemachine.txt")


def _letters_only(text: str) -> str:
    """Every run of non-letters one space, lower case: written out character by
    character, as a reference for the zoo's regular expression."""
    cleaned = "".join(character if character.isalpha() else " " for character in text)
    return " ".join(cleaned.split()).lower()


@pytest.mark.slow
def test_fra_eng_english_holds_each_distinct_english_sentence_once():
    with zipfile.ZipFile(shipped_file("fra-eng.zip")) as archive:
        lines = archive.read("fra-eng/fra.txt").decode("utf-8").splitlines()
    sentences = {_letters_only(line.split("\t")[0]) for line in lines if "\t" in line} - {""}
    expected_words = collections.Counter(word for s in sentences for word in s.split())

    text = load_pretraining_text(FRA_ENG_ENGLISH)
    assert "  " not in text and text == text.strip()
    assert all(character == " " or character.isalpha() for character in text)
    assert collections.Counter(text.split()) == expected_words
    assert len(text) == sum(map(len, sentences)) + len(sentences) - 1
    assert load_pretraining_text(FRA_ENG_ENGLISH) == text  # a fixed order
    assert not text.startswith("go ")  # ... shuffled, not the file's (shortest first)


@pytest.fixture(scope="module")
def pretraining_text(tmp_path_factory):
    """The Time Machine's characters 30,000 to 90,000: another text than small_corpus,
    with one letter the corpus lacks."""
    path = tmp_path_factory.mktemp("pretraining") / "more.txt"
    path.write_text(
        SHIPPED_TEXT.read_text(encoding="utf-8")[30000:90000] + " café", encoding="utf-8"
    )
    return path


def test_the_pretraining_stream_is_endless_and_resumable(small_corpus, pretraining_text):
    data = language_model_data(str(small_corpus), num_steps=16, batch_size=8, seed=0)

    def stage_data():
        return pretraining_data(
            str(pretraining_text),
            data,
            text=LanguageModelText(),
            num_steps=16,
            batch_size=8,
            steps_per_epoch=50,
            seed=3,
        )

    stage = stage_data()
    ids = stage.token_ids["pretrain"]
    assert stage.vocab is data.vocab and stage.validation is data.validation
    assert ids[-1] == data.vocab["<unk>"]  # é: the run's vocabulary is kept
    assert stage.steps_per_epoch == 50 and stage.num_tokens["train"] == 50 * 8 * 16
    one_pass = (len(ids) - 16) // (8 * 16)  # batches of a pass (at the largest offset)
    batches = [(x.numpy(), y.numpy()) for x, y in stage.train.take(3 * one_pass)]
    assert len(batches) == 3 * one_pass  # more than one pass: the stream repeats
    for x, y in batches[:3]:
        assert x.shape == (8, 16)
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    # rows continue from batch to batch (sequential partitioning)
    row = np.concatenate([x[0] for x, _ in batches[:4]])
    start = int(np.flatnonzero(np.all(_windows(ids, 64) == row, axis=1))[0])
    assert start < 16
    # a resumed run's stream (built anew, skipping finished epochs) goes on where it was
    resumed = [(x.numpy(), y.numpy()) for x, y in stage_data().train.skip(50).take(50)]
    for (x, y), (x_again, y_again) in zip(batches[50:100], resumed, strict=True):
        np.testing.assert_array_equal(x, x_again)
        np.testing.assert_array_equal(y, y_again)


def _windows(ids, length):
    return np.lib.stride_tricks.sliding_window_view(ids, length)


def _recipe(small_recipe, pretraining_source, **train):
    pretrain = {"source": str(pretraining_source), "epochs": 2}
    return small_recipe("pretrained-lm", pretrain=pretrain, **{"epochs": 1, **train})


@pytest.mark.slow
def test_training_starts_from_the_pretrained_weights(tmp_path, small_recipe, pretraining_text):
    # With a learning rate of 0, training proper leaves the pretrained weights as they are.
    recipe = _recipe(small_recipe, pretraining_text, learning_rate=0.0)
    out = tmp_path / "run"
    metrics = run_recipe(str(recipe), out=str(out), seed=1)
    stage = json.loads((out / "pretrain/checkpoints/state.json").read_text())
    assert stage["epochs_done"] == 2 and len(stage["history"]["loss"]) == 2
    assert stage["history"]["loss"][1] < stage["history"]["loss"][0]
    assert json.loads((out / "checkpoints/state.json").read_text())["epochs_done"] == 1
    assert metrics["pretrain_seconds"] == pytest.approx(stage["train_seconds"], abs=0.1)
    assert metrics["pretrain_seconds"] > 0
    pretrained = keras.saving.load_model(out / "pretrain/model.keras").get_weights()
    final = keras.saving.load_model(out / "model.keras").get_weights()
    for before, after in zip(pretrained, final, strict=True):
        np.testing.assert_array_equal(before, after)
    fresh = run_recipe(str(recipe), ["pretrain.source=null"], out=str(tmp_path / "fresh"), seed=1)
    assert "pretrain_seconds" in fresh and fresh["pretrain_seconds"] == 0
    assert not (tmp_path / "fresh/pretrain").exists()
    assert metrics["perplexity"] < fresh["perplexity"]  # what pretraining is for


@pytest.mark.slow
def test_kill_9_during_pretraining_then_resume(tmp_path, small_recipe, pretraining_text):
    recipe = _recipe(small_recipe, pretraining_text)
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "zoo.cli.main", "run", "recipe", str(recipe),
        "--set", "pretrain.epochs=6", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "pretrain" / "checkpoints" / "state.json"
    deadline = time.time() + 240
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done_before < 6, "pretraining finished before it could be killed"
    assert not (out / "checkpoints" / "state.json").exists()

    result = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {out / 'pretrain'} after epoch {done_before}" in result.stderr
    stage = json.loads(state.read_text())
    assert stage["epochs_done"] == 6 and len(stage["history"]["loss"]) == 6
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and np.isfinite(metrics["perplexity"])

    # Once training proper has begun, a resume does not go back to the stage.
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "pretraining on" not in again.stderr


def test_a_missing_pretraining_file_is_one_line_and_leaves_no_run(tmp_path, small_recipe):
    recipe = _recipe(small_recipe, tmp_path / "missing.txt")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "recipe", str(recipe), "--out", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "missing.txt" in line
    assert not out.exists()


def test_a_recipe_pretrains_only_for_the_sources_it_names(tmp_path, small_recipe, pretraining_text):
    """lm-lstm pretrains for The Time Machine; pointed at a user's text it says in one
    line that it does not, and trains on the text alone."""
    from zoo.recipe import load_recipe
    from zoo.tasks import get_task

    assert load_recipe("lm-lstm")["pretrain"]["for_sources"] == ["time_machine"]
    recipe = load_recipe(
        str(_recipe(small_recipe, pretraining_text)), ["pretrain.for_sources=[time_machine]"]
    )
    spec = recipe["data"]
    data = language_model_data(spec["source"], num_steps=spec["num_steps"], batch_size=32)
    task = get_task("language_model")
    assert task.pretraining(recipe, data) is None
    recipe["pretrain"]["for_sources"] = None
    assert task.pretraining(recipe, data) is not None


@pytest.mark.slow
def test_skipping_pretraining_is_one_line_on_stderr(tmp_path, small_recipe, pretraining_text):
    recipe = _recipe(small_recipe, pretraining_text)
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(recipe),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "pretrain.for_sources=[time_machine]",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "pretraining" in line]
    assert lines == [
        f"zoo: not pretraining on {pretraining_text}: this recipe pretrains for time_machine "
        "only (set pretrain.for_sources=null to pretrain before your data too)"
    ]
    assert not (tmp_path / "run" / "pretrain").exists()


def test_the_stage_says_how_long_it_is_expected_to_take(capsys, monkeypatch):
    from zoo.training import callbacks

    clock = iter([100.0, 105.0])  # read after the 3rd batch and after the 13th
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    estimate = callbacks.StageEstimate("pretraining", batches_left=1213, warmup=3, timed=10)
    for batch in range(20):
        estimate.on_train_batch_end(batch)
    lines = capsys.readouterr().err.splitlines()
    # 10 batches in 5 s: 0.5 s a batch, 1,200 batches left: 10 min
    assert lines == [
        "zoo: pretraining expected to take about 10 min more (0.50 s a batch on this "
        "machine, 1,213 batches)"
    ]
