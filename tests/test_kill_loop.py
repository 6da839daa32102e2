"""kill -9 at random moments of a training (data preparation, mid-epoch, checkpoint
writing), each followed by --resume: the run ends with every epoch, no finished epoch is
ever lost, and every file zoo reads back is whole after every kill (issue 14)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EPOCHS = 40  # enough that a fast machine still finishes after the last kill
KILLS = 12
PHASES = ("data preparation", "mid-epoch", "checkpoint writing")


def start(recipe: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "zoo.cli.main", "train", str(recipe), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--resume"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def wait_for(condition, process, timeout=120.0, interval=0.002) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(interval)
    return False


def epochs_done(out: Path) -> int:
    state = out / "checkpoints" / "state.json"
    return json.loads(state.read_text())["epochs_done"] if state.is_file() else 0


def assert_whole(out: Path) -> None:
    """Every file that zoo reads back is complete: it loads, and agrees with the others."""
    import zoo.tasks  # noqa: F401  (registers the models, metrics and optimizers)
    from zoo.data import Vocab
    from zoo.recipe import read_yaml
    from zoo.training.run_directory import RunDirectory

    if (out / "recipe.yaml").is_file():
        assert isinstance(read_yaml(out / "recipe.yaml"), dict)
    vocab = Vocab.load(out / "vocab.txt") if (out / "vocab.txt").is_file() else None
    state_path = out / "checkpoints" / "state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        assert len(state["history"]["loss"]) == state["epochs_done"]
    for path in [*sorted((out / "checkpoints").glob("*.keras")), out / "model.keras"]:
        if path.is_file() and ".tmp" not in path.name:  # a .tmp file is never read back
            model = RunDirectory(out).load_model(path)
            assert vocab is not None and model.vocab_size == len(vocab), path


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_loses_nothing(small_recipe, tmp_path):
    recipe = small_recipe(epochs=EPOCHS)
    out = tmp_path / "run"
    rng = random.Random(14)
    figures = {"kills": 0, "resumes": 0, "epochs_lost": 0, "missed": 0}
    figures.update({phase: 0 for phase in PHASES})
    checkpointed = 0
    for attempt in range(KILLS):
        phase = PHASES[attempt % len(PHASES)]
        process = start(recipe, out)
        figures["resumes"] += attempt > 0
        if phase == "data preparation":  # after the lock is taken, before an epoch ends
            ready = wait_for(lambda: (out / "run.lock").is_file(), process)
            time.sleep(rng.uniform(0.0, 0.7))
            ready = ready and epochs_done(out) == checkpointed
        elif phase == "mid-epoch":
            ready = wait_for(lambda done=checkpointed: epochs_done(out) > done, process)
            time.sleep(rng.uniform(0.1, 1.0))
        else:  # while a checkpoint's temporary file or state.json is being written
            ready = wait_for(
                lambda: any(".tmp" in path.name for path in (out / "checkpoints").glob("*")),
                process,
            )
        if process.poll() is not None:
            break  # training finished before this kill
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        figures["kills"] += 1
        figures[phase] += ready
        figures["missed"] += not ready
        assert_whole(out)
        now = epochs_done(out)
        figures["epochs_lost"] += max(0, checkpointed - now)
        checkpointed = max(checkpointed, now)

    process = start(recipe, out)
    figures["resumes"] += 1
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert_whole(out)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    figures["epochs_done"] = state["epochs_done"]
    print(f"kill loop: {json.dumps(figures)}", file=sys.stderr)
    assert state["epochs_done"] == EPOCHS and len(state["history"]["loss"]) == EPOCHS
    assert (out / "model.keras").is_file()
    assert figures["kills"] >= 10 and figures["epochs_lost"] == 0


EXPORT_KILLS = 4


@pytest.mark.slow
def test_kill_9_during_export_then_resume_ends_with_a_complete_export(small_recipe, tmp_path):
    """A run killed while it exports (the export's temporary folder exists) and resumed
    ends with one complete export that loads, and no half-written one is left."""
    import yaml

    from zoo.export.litert import load_export

    recipe = small_recipe(epochs=1)
    spec = yaml.safe_load(recipe.read_text())
    spec["export"] = {"formats": ["saved_model", "tflite"], "quantize": ["dynamic"]}
    recipe.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    rng = random.Random(15)
    command = [sys.executable, "-m", "zoo.cli.main", "run", "recipe", str(recipe)]
    command += ["--out", str(out), "--resume"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    kills = 0
    for _ in range(EXPORT_KILLS):
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
        )
        exporting = wait_for(lambda: any(out.glob(".export.partial-*")), process, timeout=300)
        time.sleep(rng.uniform(0.0, 0.5))
        if not exporting or process.poll() is not None or not any(out.glob(".export.partial-*")):
            break  # the export finished first
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        if (out / "export" / "export.json").is_file():  # renamed just before the kill:
            load_export(out / "export")  # then it is whole

    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-2000:]
    print(f"export kill loop: kills {kills}, resumes {kills + 1}", file=sys.stderr)
    assert kills >= 3
    assert not list(out.glob(".export.partial-*"))
    assert load_export(out / "export").generate("the", 5, greedy=True).startswith("the")
    assert json.loads((out / "export" / "card.json").read_text())["quality"]["model.tflite"] > 0
