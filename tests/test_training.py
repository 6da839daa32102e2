"""End-to-end runs on a small corpus: metrics, files, resume after kill -9, NaN, locks."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.pipeline import evaluate_run, generate_from_run, run_recipe
from zoo.training.run_directory import RunDirectory, RunError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_corpus):
    import yaml

    folder = tmp_path_factory.mktemp("finished")
    recipe = folder / "small-lm.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "small-lm",
                "task": "language_model",
                "data": {"source": str(small_corpus), "num_steps": 16, "batch_size": 32},
                "model": {"layers": [{"name": "lstm", "units": 16}]},
                "train": {"epochs": 2, "learning_rate": 0.01},
                "evaluate": {"splits": ["train", "validation", "test"]},
            }
        )
    )
    out = folder / "run"
    metrics = run_recipe(str(recipe), out=str(out), seed=3)
    return recipe, out, metrics


def test_a_run_writes_metrics_and_its_files(finished_run):
    _, out, metrics = finished_run
    for key in ("perplexity", "val_perplexity", "train_perplexity", "tokens_per_sec"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, key
    vocab_size = len((out / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert 1 < metrics["perplexity"] < vocab_size  # better than uniform
    assert json.loads((out / "metrics.json").read_text())["perplexity"] == metrics["perplexity"]
    for path in (
        "recipe.yaml",
        "checkpoints/last.keras",
        "checkpoints/state.json",
        "logs/history.csv",
        "model.keras",
        "export/saved_model/saved_model.pb",
        "export/vocab.txt",
        "export/recipe.yaml",
        "export/export.json",
        "export/card.md",
    ):
        assert (out / path).exists(), path
    assert (out / "recipe.yaml").read_text().startswith(f"# sha256: {metrics['recipe_sha256']}")
    state = json.loads((out / "checkpoints/state.json").read_text())
    assert state["epochs_done"] == 2 and len(state["history"]["loss"]) == 2
    assert any(
        name.startswith("events.out.tfevents")
        for _, _, files in os.walk(out / "logs")
        for name in files
    )


def test_evaluate_reproduces_the_run_metrics(finished_run):
    _, out, metrics = finished_run
    again = evaluate_run(str(out), ["test"])
    assert again["perplexity"] == pytest.approx(metrics["perplexity"], rel=1e-6)


def test_generate_continues_the_prefix(finished_run):
    _, out, _ = finished_run
    text = generate_from_run(str(out), "time traveller", 20, greedy=True)
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 20
    assert generate_from_run(str(out), "the", 10, seed=1) == generate_from_run(
        str(out), "the", 10, seed=1
    )


def test_long_generation_shows_progress_and_unseen_characters_are_named(finished_run):
    _, out, _ = finished_run
    args = ["generate", str(out), "--prefix", "the übermensch", "--length", "1000", "--greedy"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert len(result.stdout) == len("the übermensch") + 1000 + 1
    assert "zoo: warning: the model never saw 'ü' in --prefix; read as <unk>" in result.stderr
    assert "\rzoo: generated 500 of 1,000 tokens" in result.stderr
    assert result.stderr.endswith("zoo: generated 1,000 of 1,000 tokens\n")


def test_the_saved_model_step_signature_streams_like_keras(finished_run):
    import keras

    _, out, _ = finished_run
    model = keras.saving.load_model(out / "model.keras")
    exported = tf.saved_model.load(str(out / "export/saved_model"))
    tokens = np.array([[3, 5, 7, 2, 9]], dtype="int32")
    full = exported.signatures["serve"](tokens=tf.constant(tokens))["logits"].numpy()
    np.testing.assert_allclose(full, model(tokens).numpy(), atol=1e-5)
    step = exported.signatures["step"]
    states = [tf.zeros((1, size)) for size in model.state_sizes]
    for t in range(tokens.shape[1]):
        named_states = {f"state_{index}": state for index, state in enumerate(states)}
        outputs = step(tokens=tf.constant(tokens[:, t]), **named_states)
        states = [outputs[f"state_{index}"] for index in range(len(states))]
        np.testing.assert_allclose(outputs["logits"].numpy(), full[:, t], atol=1e-5)


@pytest.mark.slow
def test_the_same_seed_repeats_a_run(trained_run, tmp_path):
    recipe, run = trained_run  # trained with seed 3
    metrics = json.loads((run / "metrics.json").read_text())
    again = run_recipe(str(recipe), out=str(tmp_path / "again"), seed=3)
    assert again["perplexity"] == metrics["perplexity"]


def test_a_finished_run_directory_is_not_overwritten(finished_run):
    recipe, out, _ = finished_run
    with pytest.raises(RunError, match="already holds a run"):
        run_recipe(str(recipe), out=str(out))


def test_two_processes_cannot_write_one_run_directory(tmp_path):
    first = RunDirectory(tmp_path / "run")
    first.lock()
    try:
        code = (
            "from zoo.training.run_directory import RunDirectory, RunError\n"
            f"try:\n    RunDirectory({str(tmp_path / 'run')!r}).lock()\n"
            "except RunError as e:\n    print(e)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert "another zoo process is writing" in result.stdout
    finally:
        first.unlock()


@pytest.mark.slow
def test_a_forced_nan_stops_cleanly(small_recipe, tmp_path):
    path = small_recipe(learning_rate=1000.0, clip_norm=None)  # the largest rate allowed
    out = tmp_path / "nan"
    result = CliRunner().invoke(
        cli,
        ["run", "recipe", str(path), "--set", "model.layers[0].activation=relu", "--out", str(out)],
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "the training loss became nan" in line and "stopped" in line
    assert not (out / "model.keras").exists()
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_kill_9_then_resume_completes_the_run(small_recipe, tmp_path):
    path = small_recipe(epochs=5)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "zoo.cli.main", "run", "recipe", str(path), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 240
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = json.loads(state.read_text())
    done_before = before["epochs_done"]
    assert 1 <= done_before < 5, "the run finished before it could be killed"
    assert before["timed_epochs"] == done_before and before["train_seconds"] > 0
    assert not (out / "metrics.json").exists()

    result = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 5 and metrics["resumed_from_epoch"] == done_before
    assert 1 <= metrics["best_epoch"] <= 5
    after = json.loads(state.read_text())
    assert len(after["history"]["loss"]) == 5
    assert math.isfinite(metrics["perplexity"])
    # The training time covers the epochs before the kill too.
    assert after["timed_epochs"] == 5
    assert metrics["train_seconds"] == pytest.approx(after["train_seconds"], abs=0.1)
    assert after["train_seconds"] > before["train_seconds"]


def test_resume_refuses_a_different_recipe(finished_run):
    recipe, out, _ = finished_run
    with pytest.raises(RunError, match="recipe differs"):
        run_recipe(str(recipe), ["train.epochs=3"], out=str(out), resume=True)


@pytest.mark.slow
def test_ar_mlp_sine_reports_k_step_errors_and_a_plot(tmp_path):
    overrides = ["train.epochs=2", "export.formats=[]"]  # its export is test_task_contract's
    metrics = run_recipe("ar-mlp-sine", overrides, out=str(tmp_path / "ar"))
    errors = [metrics[f"mse_{k}_step"] for k in (1, 4, 16, 64)]
    assert all(math.isfinite(error) for error in errors)
    assert errors[0] < 0.2 and errors[0] < errors[-1]  # noise variance is 0.04; far horizons drift
    assert (tmp_path / "ar" / "predictions.png").stat().st_size > 10_000
    from zoo.pipeline import evaluate_run

    with pytest.raises(RunError, match="'autoregressive' run is evaluated on its test split only"):
        evaluate_run(str(tmp_path / "ar"), ("validation",))


def test_the_best_epoch_is_kept_and_patience_stops_training(tmp_path):
    import keras

    from zoo.training.callbacks import EpochCheckpoint, NonFiniteLossGuard

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit sets it
    state = {"history": {}}
    checkpoint = EpochCheckpoint(tmp_path, state, NonFiniteLossGuard(), patience=2)
    checkpoint.set_model(model)
    best_kernel = None
    for epoch, val_loss in enumerate([3.0, 2.0, 2.5, 2.6]):
        model.layers[0].kernel.assign(np.full((2, 1), float(epoch), "float32"))
        if val_loss == 2.0:
            best_kernel = model.layers[0].kernel.numpy()
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        assert model.stop_training == (epoch == 3)  # two epochs without improvement
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["best_epoch"] == 2 and saved["epochs_done"] == 4
    assert saved["history"]["val_loss"] == [3.0, 2.0, 2.5, 2.6]
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_array_equal(best.layers[0].kernel.numpy(), best_kernel)


def test_a_corrupt_model_file_is_one_line(finished_run, tmp_path):
    import shutil

    _, out, _ = finished_run
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    (damaged / "model.keras").write_bytes(b"not a zip file at all")
    result = CliRunner().invoke(cli, ["evaluate", str(damaged)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "model.keras: corrupt model file (not a .keras zip archive)" in line
    assert "not found" not in line  # it exists (issue 14)
