"""The pictures of a run, as PNG files: training curves, attention heat maps and the
export card's chart.

matplotlib is imported when a picture is drawn, with its Agg backend (no display
needed). Each picture's geometry is fixed by its content, so a test (or a reader) can
find a cell of a heat map by its row and column: ``attention_cell_centre``.
"""

from __future__ import annotations

from pathlib import Path

# matplotlib's first two colours: what a reader of the chapter's plots expects
TRAIN_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#ff7f0e"
PRETRAINING_SHADE = "#e5f2e5"  # a green no blend of the lines and the white makes
DPI = 100

# An attention map: one square cell per (target, source) token pair, in fixed margins
# that leave room for the words; no tight bounding box, so a cell's place is known.
CELL_INCHES = 0.4
MARGINS_INCHES = {"left": 1.6, "right": 1.0, "top": 0.5, "bottom": 1.3}

# Logged per epoch but no measure of fit
NOT_CURVES = ("learning_rate",)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _curve_names(stages: list[tuple[str, dict]]) -> list[str]:
    """``loss`` first, then every other measure logged for training or validation."""
    names = []
    for _, history in stages:
        for key in history:
            name = key.removeprefix("val_")
            if name not in names and name not in NOT_CURVES:
                names.append(name)
    return sorted(names, key=lambda name: (name != "loss", name))


def training_curves(stages: list[tuple[str, dict]], path) -> Path:
    """Loss (and each other measure logged, perplexity or BLEU) per epoch, training and
    validation, one panel each; the stages (``[(label, history)]``, pretraining first,
    a history as ``state.json`` keeps it: name → one value per epoch) follow each other
    along the epochs, every stage but the last on a grey ground under its label."""
    pyplot = _pyplot()
    from matplotlib.ticker import MaxNLocator

    names = _curve_names(stages) or ["loss"]
    figure, axes = pyplot.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), dpi=DPI)
    axes = [axes] if len(names) == 1 else list(axes)
    first_epoch = 1
    for number, (label, history) in enumerate(stages):
        epochs = max((len(values) for values in history.values()), default=0)
        last_stage = number == len(stages) - 1
        for axis, name in zip(axes, names, strict=True):
            if not last_stage and epochs:
                axis.axvspan(first_epoch - 0.5, first_epoch + epochs - 0.5, color=PRETRAINING_SHADE)
                axis.text(first_epoch - 0.4, 1.0, label, transform=axis.get_xaxis_transform(),
                          va="top", fontsize="small")  # fmt: skip
            for key, colour, split in (
                (name, TRAIN_COLOUR, "train"),
                (f"val_{name}", VALIDATION_COLOUR, "validation"),
            ):
                values = history.get(key, [])
                steps = range(first_epoch, first_epoch + len(values))
                axis.plot(steps, values, marker="o", markersize=3, color=colour,
                          label=split if last_stage else None)  # fmt: skip
        first_epoch += epochs
    for axis, name in zip(axes, names, strict=True):
        axis.set_xlabel("epoch")
        axis.set_title(name.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return Path(path)


def attention_size(rows: int, columns: int) -> tuple[int, int]:
    """(height, width) in pixels of the attention map of ``rows`` target tokens and
    ``columns`` source tokens."""
    margins = MARGINS_INCHES
    height = margins["top"] + rows * CELL_INCHES + margins["bottom"]
    width = margins["left"] + columns * CELL_INCHES + margins["right"]
    return round(height * DPI), round(width * DPI)


def attention_cell_centre(row: int, column: int) -> tuple[int, int]:
    """(y, x) in pixels of the centre of the cell of target token ``row`` and source
    token ``column``, from the image's top left corner."""
    cell = CELL_INCHES * DPI
    top = MARGINS_INCHES["top"] * DPI
    left = MARGINS_INCHES["left"] * DPI
    return round(top + (row + 0.5) * cell), round(left + (column + 0.5) * cell)


def attention_map(weights, source_tokens, target_tokens, path, title: str = "") -> Path:
    """The attention weights of one translation as a heat map, as the chapter draws
    them: a row per target token (the query), a column per source token (the key),
    each cell coloured by its weight α on viridis from 0 (dark) to 1 (yellow).

    Shapes: weights [len(target_tokens), len(source_tokens)], each row summing to 1.
    """
    import numpy as np

    weights = np.asarray(weights, dtype="float32")
    rows, columns = weights.shape
    height, width = attention_size(rows, columns)
    pyplot = _pyplot()
    figure = pyplot.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    margins = MARGINS_INCHES
    axis = figure.add_axes(
        [
            margins["left"] * DPI / width,
            margins["bottom"] * DPI / height,
            columns * CELL_INCHES * DPI / width,
            rows * CELL_INCHES * DPI / height,
        ]
    )
    image = axis.imshow(
        weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
    )
    axis.set_xticks(range(columns), source_tokens, rotation=90)
    axis.set_yticks(range(rows), target_tokens)
    axis.set_xlabel("source (keys)")
    axis.set_ylabel("translation (queries)")
    if title:
        axis.set_title(title, fontsize="small")
    colour_bar = figure.add_axes(
        [
            (margins["left"] + columns * CELL_INCHES + 0.2) * DPI / width,
            margins["bottom"] * DPI / height,
            0.15 * DPI / width,
            rows * CELL_INCHES * DPI / height,
        ]
    )
    figure.colorbar(image, cax=colour_bar)
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return Path(path)


def card_chart(card: dict, path) -> Path:
    """The export card in one picture: each TFLite file's size (and the float model's,
    when a quantized file states its share of it), and, when measured, each model's
    quality on the card's split."""
    pyplot = _pyplot()
    quality = card.get("quality") or {}
    models = {key: value for key, value in quality.items() if key in _quality_models(card)}
    panels = 2 if models else 1
    figure, axes = pyplot.subplots(1, panels, figsize=(4.5 * panels, 3.0), dpi=DPI)
    axes = [axes] if panels == 1 else list(axes)
    sizes = {entry["file"]: entry["size"] / 1e6 for entry in card["files"]}
    has_float = any(entry["quantization"] == "none" for entry in card["files"])
    for entry in card["files"]:
        if entry.get("size_of_float") and not has_float:
            sizes["float32 (estimated)"] = entry["size"] / entry["size_of_float"] / 1e6
    bars = axes[0].barh(list(sizes), list(sizes.values()), color=TRAIN_COLOUR)
    axes[0].bar_label(bars, fmt="%.2f", fontsize="small", padding=2)
    for axis in axes:  # room for the values beside the bars
        axis.margins(x=0.2)
    axes[0].set_xlabel("MB")
    axes[0].set_title("file sizes", fontsize="small")
    if models:
        bars = axes[1].barh(list(models), list(models.values()), color=VALIDATION_COLOUR)
        axes[1].bar_label(bars, fmt="%.2f", fontsize="small", padding=2)
        axes[1].set_title(
            f"{quality['metric'].split(',')[0]}, {quality['split']} split", fontsize="small"
        )
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return Path(path)


def _quality_models(card: dict) -> set[str]:
    """The names the card's quality rows are measured for: the Keras model and each file."""
    return {"keras", *(entry["file"] for entry in card["files"])}


def attention_map_of_run(run_dir: str, sentence: str, path, beam_width=None, alpha=None) -> str:
    """``zoo translate RUN SENTENCE --attention PATH``: the translation of ``sentence`` by
    the run's (or pretrained model's) translator, its attention heat map written to
    ``path``."""
    from zoo.errors import UsageError
    from zoo.pipeline import load_run

    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"--attention: {path.parent}: no such folder")
    if path.suffix.lower() != ".png":
        raise UsageError(f"--attention: {path}: expected a .png file name")
    run, recipe, task, model = load_run(run_dir)
    decoding = {"beam_width": beam_width, "alpha": alpha}
    return task.draw_attention(model, run.path, recipe, sentence, path, **decoding)
