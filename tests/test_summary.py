"""What a person sees at the end of a command (zoo.reports.summary): a few lines, or with
--json the machine-readable result and nothing else; progress on a terminal; the
cleaning a user's own translation pairs get."""

import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.reports.summary import MAX_RUN_LINES, export_summary, run_summary

REPO_ROOT = Path(__file__).resolve().parent.parent


def tiny_language_model(folder, small_corpus, epochs=2) -> Path:
    recipe = folder / "tiny.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "task": "language_model",
                "data": {"source": str(small_corpus), "num_steps": 8, "batch_size": 32},
                "model": {"layers": [{"name": "gru", "units": 8}]},
                "train": {"epochs": epochs, "learning_rate": 0.01},
                "export": {"formats": []},
            }
        )
    )
    return recipe


def commands_of(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines[lines.index("Try next:") + 1 :] if line[:2] == "  "]


def read_all(controller, into: bytearray) -> None:
    """What a pseudo-terminal shows, until its last writer closes it."""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # every writer has closed its end
            return
        if not chunk:
            return
        into += chunk


def test_run_recipe_on_a_terminal_shows_a_bar_and_prints_json_alone(
    tmp_path, small_corpus, capsys, monkeypatch
):
    """The CLI in this process with stderr on a pseudo-terminal: the bar, rewritten in
    place, with the epoch, the rate and the time left, then each epoch's line; stdout
    holds the --json result and nothing else."""
    recipe = tiny_language_model(tmp_path, small_corpus, epochs=1)
    out = tmp_path / "run"
    controller, terminal = pty.openpty()
    shown = bytearray()
    reader = threading.Thread(target=read_all, args=(controller, shown))
    reader.start()
    with os.fdopen(terminal, "w", encoding="utf-8") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        cli.main(["run", "recipe", str(recipe), "--out", str(out), "--json"], standalone_mode=False)
    reader.join(timeout=30)
    os.close(controller)
    metrics = json.loads(capsys.readouterr().out)  # the whole of stdout
    assert metrics["run_dir"] == str(out) and metrics["perplexity"] > 1
    text = shown.decode(errors="replace")
    assert "\repoch 1/1 [" in text and " batches, " in text
    assert "/s, " in text and " left, loss " in text
    assert "epoch 1/1: loss " in text  # the epoch's line stays


def test_away_from_a_terminal_training_shows_one_line_per_epoch(capsys):
    from zoo.training.callbacks import EpochProgress

    progress = EpochProgress(epochs=2, steps_per_epoch=3)
    for epoch in range(2):
        progress.on_epoch_begin(epoch)
        for batch in range(3):
            progress.on_train_batch_end(batch, {"loss": 2.0})
        progress.on_epoch_end(epoch, {"loss": 1.5, "val_loss": 1.75})
    shown = capsys.readouterr()
    assert shown.out == ""
    lines = shown.err.splitlines()
    assert [line.rsplit(" (", 1)[0] for line in lines] == [
        "epoch 1/2: loss 1.5, val_loss 1.75",
        "epoch 2/2: loss 1.5, val_loss 1.75",
    ]


def test_zoo_evaluate_ends_with_a_summary_or_json(trained_run, tmp_path):
    _, trained = trained_run
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    evaluated = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert evaluated.exit_code == 0, evaluated.output
    lines = evaluated.stdout.splitlines()
    assert lines[0] == f"Evaluated {run}" and lines[1].startswith("  test perplexity ")
    evaluated = CliRunner().invoke(cli, ["evaluate", str(run), "--json"])
    metrics = json.loads(evaluated.stdout)
    assert f"test perplexity {metrics['perplexity']:.2f}" in lines[1]


def test_a_language_model_run_ends_with_a_short_summary(trained_run):
    _, run = trained_run
    metrics = {**json.loads((run / "metrics.json").read_text()), "run_dir": str(run)}
    lines = run_summary(metrics)
    assert len(lines) <= MAX_RUN_LINES
    assert lines[0].startswith("Trained tiny (language_model): 1 epochs")
    perplexity = f"test perplexity {metrics['perplexity']:.2f}"
    assert any(perplexity in line and "tokens" in line for line in lines)
    assert f"Run: {run}" in lines and "Pictures: curves.png" in lines
    assert any(line.startswith("Cleaning (data.preprocess): chapter") for line in lines)
    commands = commands_of(lines)
    assert len(commands) >= 2 and commands[0].startswith(f"zoo generate {run} --prefix ")
    assert any(command.startswith("zoo export ") for command in commands)


def test_a_translator_run_names_bleu_its_signature_and_its_attention_maps(translator_run):
    run, metrics, _ = translator_run
    lines = run_summary(metrics)
    assert len(lines) <= MAX_RUN_LINES
    assert any(
        line.strip().startswith(f"test BLEU {metrics['bleu']:.1f} (beam 3") for line in lines
    )
    assert f"  sacrebleu {metrics['bleu_signature']}" in lines
    maps = ", ".join(Path(path).name for path in metrics["attention_maps"])
    assert f"Pictures: curves.png, {maps}" in lines and "attention-1.png" in maps
    commands = commands_of(lines)
    assert commands[0].startswith(f"zoo translate {run} ")
    assert commands[1].endswith("--attention attention.png")


@pytest.mark.slow
def test_zoo_export_says_what_it_wrote(trained_run, tmp_path):
    _, run = trained_run
    out = tmp_path / "e"
    args = ["export", str(run), "--format", "tflite", "--no-measure", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["folder"] == str(out) and (out / "card.png").is_file()
    assert "![file sizes and quality](card.png)" in (out / "card.md").read_text()
    lines = export_summary(card)
    assert lines[0].startswith(f"Exported to {out} in ")
    assert any(line.startswith("  model-dynamic.tflite: ") for line in lines)


def test_models_info_is_a_few_lines_or_json():
    summary = CliRunner().invoke(cli, ["models", "info", "seq2seq-attn-fra-eng"])
    assert summary.exit_code == 0, summary.output
    lines = summary.stdout.splitlines()
    assert lines[0].startswith("seq2seq-attn-fra-eng (translator, from zoo): ")
    assert any(line.startswith("  metrics: bleu 40.54") for line in lines)
    entry = json.loads(
        CliRunner().invoke(cli, ["models", "info", "seq2seq-attn-fra-eng", "--json"]).stdout
    )
    assert entry["name"] == "seq2seq-attn-fra-eng" and entry["artifacts"]


def test_a_users_pairs_are_split_at_inverted_marks_without_any_set(tmp_path):
    from zoo.data.translation import translation_data_for
    from zoo.recipe import load_recipe

    pairs = tmp_path / "es.tsv"
    rows = [("¿Dónde estás?", "Where are you?"), ("¡Hola!", "Hello!"), ("¿Qué?", "What?")]
    pairs.write_text("".join(f"{es}\t{en}\n" for es, en in rows * 20), encoding="utf-8")
    recipe = load_recipe("seq2seq-gru", [f"data.source={pairs}", "data.min_freq=1"])
    assert recipe["data"]["preprocess"] == "lower"
    data = translation_data_for(recipe["data"])
    for token in ("¿", "¡", "dónde", "hola", "?", "!"):
        assert token in data.src_vocab.token_to_idx, token
    assert "¿dónde" not in data.src_vocab.token_to_idx
    # fra-eng keeps the chapter's rules, and a recipe that names a cleaning keeps it
    assert load_recipe("seq2seq-gru")["data"]["preprocess"] == "chapter"
    named = load_recipe("seq2seq-gru", [f"data.source={pairs}", "data.preprocess=chapter"])
    assert named["data"]["preprocess"] == "chapter"


# A real process, as a user starts it: in the slow set with the other real processes.
@pytest.mark.slow
def test_a_real_process_shows_a_progress_bar_on_a_terminal(tmp_path, small_corpus):
    """``zoo run recipe`` with stderr on a pseudo-terminal: the bar, rewritten in place
    (carriage returns), with the epoch, the rate and the time left; stdout (a pipe) has
    the summary alone."""
    recipe = tiny_language_model(tmp_path, small_corpus)
    controller, terminal = pty.openpty()
    command = [sys.executable, "-m", "zoo.cli.main", "run", "recipe", str(recipe)]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the process has closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=120)[0].decode()
    os.close(controller)
    assert process.returncode == 0, shown[-2000:]
    text = shown.decode(errors="replace")
    assert "\repoch 1/2 [" in text and "\repoch 2/2 [" in text
    assert " batches, " in text and "/s, " in text and " left" in text
    assert "epoch 2/2: loss " in text  # each epoch's line stays
    assert stdout.splitlines()[0].startswith("Trained tiny (language_model): 2 epochs")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_long_steps_show_a_bar_on_a_terminal_only():
    from zoo.reports.progress import counted

    terminal, log = Terminal(), io.StringIO()
    assert list(counted(range(1500), "reading", "tokens", stream=terminal)) == list(range(1500))
    assert "\rreading [########################] 1,500/1,500 tokens" in terminal.getvalue()
    assert terminal.getvalue().split("\r")[-1].strip() == ""  # cleared when done
    assert list(counted(range(1500), "reading", "tokens", stream=log)) == list(range(1500))
    short = Terminal()
    assert list(counted(range(10), "reading", "tokens", stream=short)) == list(range(10))
    assert log.getvalue() == short.getvalue() == ""
