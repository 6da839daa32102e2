"""The few lines a command ends with, for a person: what was done, the figures that
matter with how they were measured, where the files are, what to try next. ``--json``
prints the machine-readable result instead.

The task words its own figures and commands (``Task.headline``, ``Task.try_next``);
nothing here knows a task by name.
"""

from __future__ import annotations

from pathlib import Path

# The end-of-run summary's length, at most: a screen's worth under the command.
MAX_RUN_LINES = 12

# What ``zoo.pipeline.run_recipe`` adds to the task's results in metrics.json.
RUN_KEYS = frozenset(
    {
        "recipe",
        "recipe_sha256",
        "tokens_per_sec",
        "train_seconds",
        "pretrain_seconds",
        "epochs",
        "best_epoch",
        "resumed_from_epoch",
        "machine",
        "export",
        "wall_seconds",
        "run_dir",
    }
)

# data.preprocess, in a reader's words (zoo.text.formats does each)
CLEANINGS = {
    "chapter": "the chapter's rules, written for its English and French",
    "lower": "lower case, every punctuation mark kept (¿ ¡ « » too)",
    "none": "the text as written, case and punctuation kept",
}


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``1 h 05 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _recipe_and_task(run_path: Path):
    from zoo.recipe import validate
    from zoo.tasks import get_task
    from zoo.training.run_directory import RunDirectory

    recipe = validate(RunDirectory(run_path).read_recipe())
    return recipe, get_task(recipe["task"])


def pictures_in(metrics: dict) -> list[str]:
    """The PNG files a task's results name (a plot, attention maps), as file names."""
    found = []
    for value in metrics.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.endswith(".png"):
                found.append(Path(item).name)
    return found


def cleaning_line(recipe: dict) -> list[str]:
    preprocess = recipe.get("data", {}).get("preprocess")
    if preprocess is None:
        return []
    return [f"Cleaning (data.preprocess): {preprocess}, {CLEANINGS.get(preprocess, '')}"]


def export_line(export: dict) -> str:
    files = ", ".join(f"{entry['file']} {megabytes(entry['size'])}" for entry in export["files"])
    return f"Export: {export['folder']} ({files or 'SavedModel'}; card.md, card.png)"


def run_summary(metrics: dict) -> list[str]:
    """What ``zoo run recipe`` ends with: at most ``MAX_RUN_LINES`` lines."""
    if "worker" in metrics:  # a worker process of --workers: the chief has the results
        return [f"worker {metrics['worker']} done ({metrics['epochs']} epochs)"]
    run_path = Path(metrics["run_dir"])
    recipe, task = _recipe_and_task(run_path)
    results = {key: value for key, value in metrics.items() if key not in RUN_KEYS}
    took = f"in {duration(metrics['wall_seconds'])}"
    if metrics.get("pretrain_seconds"):
        took += f" (pretraining {duration(metrics['pretrain_seconds'])})"
    best = f", best {metrics['best_epoch']}" if metrics.get("best_epoch") else ""
    resumed = metrics.get("resumed_from_epoch")
    lines = [
        f"Trained {recipe['name']} ({recipe['task']}): {metrics['epochs']} epochs{best}"
        f"{f', resumed after epoch {resumed}' if resumed else ''}, {took}",
        *(f"  {line}" for line in task.headline(results, recipe)),
        *cleaning_line(recipe),
        f"Run: {run_path}",
        "Pictures: " + ", ".join(["curves.png", *pictures_in(results)]),
    ]
    if "export" in metrics:
        lines.append(export_line(metrics["export"]))
    room = MAX_RUN_LINES - len(lines) - 2  # the heading and the last line
    commands = task.try_next(run_path, recipe)[: max(2, room)]
    lines += ["Try next:", *(f"  {command}" for command in commands)]
    lines.append("Every figure: metrics.json in the run (or rerun with --json)")
    return lines


def evaluation_summary(run_dir: str, metrics: dict) -> list[str]:
    """What ``zoo evaluate`` ends with."""
    from zoo.pretrained.resolver import resolve_model

    run_path = Path(resolve_model(run_dir).work_path)
    recipe, task = _recipe_and_task(run_path)
    lines = [f"Evaluated {run_dir}", *(f"  {line}" for line in task.headline(metrics, recipe))]
    pictures = pictures_in(metrics)
    if pictures:
        lines.append(f"Pictures in {run_path}: {', '.join(pictures)}")
    lines.append("Every figure: --json")
    return lines


def export_summary(result: dict) -> list[str]:
    """What ``zoo export`` ends with."""
    lines = [f"Exported to {result['folder']} in {duration(result['seconds'])}"]
    for entry in result["files"]:
        share = f" ({entry['size_of_float']:.0%} of float32)" if "size_of_float" in entry else ""
        lines.append(f"  {entry['file']}: {megabytes(entry['size'])}{share}")
    quality = result.get("quality")
    if quality:
        models = [
            f"{name} {value:.4g}"
            for name, value in quality.items()
            if name == "keras" or name in {entry["file"] for entry in result["files"]}
        ]
        lines.append(f"  {quality['split']} {quality['metric']}: {', '.join(models)}")
    lines.append("Card: card.md and card.png there; export.json says how an app runs the files")
    return lines


def model_summary(entry: dict) -> list[str]:
    """What ``zoo models info`` says of a pretrained model's entry."""
    numbers = [
        f"{key.replace('_', ' ')} {value:.4g}"
        for key, value in entry.get("metrics", {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    licences = "; ".join(f"{part} {text}" for part, text in entry.get("licenses", {}).items())
    recipe = entry.get("recipe", {})
    kind = ", export only: TFLite on LiteRT" if entry.get("kind") == "export" else ""
    return [
        f"{entry['name']} ({entry['task']}{kind}, from {entry.get('provider', 'zoo')}): "
        f"{entry.get('description', '')}",
        f"  recipe {recipe.get('name')} (sha256 {str(recipe.get('sha256', ''))[:12]}…)",
        f"  metrics: {', '.join(numbers) or 'none recorded'}",
        f"  licences: {licences or 'not stated'}",
        f"  files: {len(entry.get('artifacts', {}))}, {megabytes(entry.get('size', 0))}, "
        f"{entry.get('location', '')} {entry.get('folder', '')}".rstrip(),
        "Every field: --json",
    ]
