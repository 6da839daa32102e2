"""The pictures of a run (zoo.reports.figures): each checked by its existence, size,
dimensions and one property of its pixels."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from zoo.cli.main import cli
from zoo.reports.figures import (
    PRETRAINING_SHADE,
    TRAIN_COLOUR,
    VALIDATION_COLOUR,
    attention_cell_centre,
    attention_size,
    card_chart,
    training_curves,
)


def pixels(path):
    """The picture's RGB values in [0, 1], [height, width, 3], after checking it is a
    PNG file of some substance."""
    assert path.is_file() and path.stat().st_size > 2000, path
    return imread(path)[..., :3]


def share_of(image, colour, tolerance=0.02) -> float:
    """The share of the picture's pixels of ``colour``."""
    close = np.all(np.abs(image - np.asarray(to_rgb(colour))) < tolerance, axis=-1)
    return float(close.mean())


def test_every_run_draws_its_training_curves(trained_run):
    _, run = trained_run
    image = pixels(run / "curves.png")
    assert image.shape[:2] == (360, 900)  # loss and perplexity, a panel each
    assert share_of(image, TRAIN_COLOUR) > 0 and share_of(image, VALIDATION_COLOUR) > 0
    assert share_of(image, PRETRAINING_SHADE) == 0
    assert "curves.png" in json.loads((run / "zoo-run.json").read_text())["entries"]


def test_pretraining_is_drawn_as_its_own_stage(tmp_path):
    history = {"loss": [3.0, 2.5, 2.2], "val_loss": [3.1, 2.7, 2.4]}
    alone = pixels(training_curves([("training", history)], tmp_path / "alone.png"))
    staged = training_curves([("pretraining", history), ("training", history)], tmp_path / "s.png")
    image = pixels(staged)
    assert image.shape[:2] == alone.shape[:2] == (360, 450)  # the loss alone: one panel
    assert share_of(image, PRETRAINING_SHADE) > 0.05 and share_of(alone, PRETRAINING_SHADE) == 0


def attention_of(run, sentence):
    """The run's translation of ``sentence`` with its attention weights."""
    from zoo.pipeline import load_run
    from zoo.text.vocab import Vocab

    run, recipe, task, model = load_run(str(run))
    vocabs = [Vocab.load(run.path / name) for name in task.artifacts]
    return task.translator(model, *vocabs, recipe).attention(sentence)


def check_heat_map(path, attention):
    """One row per translation token and one column per source token, each cell's
    centre coloured as its weight on viridis."""
    weights = attention.weights
    rows, columns = weights.shape
    assert rows == len(attention.target_tokens) and columns == len(attention.source_tokens)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    image = pixels(path)
    assert image.shape[:2] == attention_size(rows, columns)
    for row in range(rows):
        for column in range(columns):
            y, x = attention_cell_centre(row, column)
            expected = colormaps["viridis"](float(weights[row, column]))[:3]
            np.testing.assert_allclose(image[y, x], expected, atol=0.02)


def test_a_translator_run_draws_attention_maps_of_its_first_test_sentences(translator_run):
    run, metrics, _ = translator_run
    maps = metrics["attention_maps"]
    assert [name.rsplit("/", 1)[-1] for name in maps] == [
        f"attention-{number}.png" for number in range(1, len(maps) + 1)
    ]
    first_source = (run / "translations.tsv").read_text().splitlines()[1].split("\t")[0]
    check_heat_map(run / "attention-1.png", attention_of(run, first_source))


@pytest.mark.slow
def test_zoo_translate_draws_the_attention_of_a_sentence(translator_run, tmp_path):
    run, _, _ = translator_run
    out = tmp_path / "mine.png"
    result = CliRunner().invoke(cli, ["translate", str(run), "i'm home .", "--attention", str(out)])
    assert result.exit_code == 0, result.output
    attention = attention_of(run, "i'm home .")
    assert result.stdout.strip() == attention.translation
    check_heat_map(out, attention)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--attention", "{tmp}/a.png"], "--attention: give the SENTENCE"),
        (["go .", "--attention", "{tmp}/nowhere/a.png"], "no such folder"),
        (["go .", "--attention", "{tmp}/a.txt"], "expected a .png file name"),
    ],
)
def test_attention_maps_refused_in_one_line(translator_run, tmp_path, args, says):
    run, _, _ = translator_run
    args = [arg.format(tmp=tmp_path) for arg in args]
    result = CliRunner().invoke(cli, ["translate", str(run), *args], input="go .\n")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("zoo: error: ") and says in line
    assert list(tmp_path.iterdir()) == []


def test_a_language_model_has_no_attention_to_draw(trained_run, tmp_path):
    _, run = trained_run
    result = CliRunner().invoke(cli, ["translate", str(run), "go .", "--attention", "a.png"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "zoo: error: a 'language_model' model has no attention to draw"


CARD = {
    "files": [
        {"file": "model.tflite", "quantization": "none", "size": 4_000_000, "size_of_float": 1.0},
        {"file": "model-dynamic.tflite", "quantization": "dynamic", "size": 1_000_000},
    ],
    "quality": {"metric": "BLEU", "split": "test", "keras": 30.0, "model.tflite": 30.0},
}


def test_the_card_chart_shows_sizes_and_quality(tmp_path):
    image = pixels(card_chart(CARD, tmp_path / "card.png"))
    assert image.shape[:2] == (300, 900)
    bars = share_of(image, TRAIN_COLOUR)
    assert bars > 0.01 and share_of(image, VALIDATION_COLOUR) > 0.01
    unmeasured = pixels(card_chart({"files": CARD["files"]}, tmp_path / "sizes.png"))
    assert unmeasured.shape[:2] == (300, 450) and share_of(unmeasured, VALIDATION_COLOUR) == 0
