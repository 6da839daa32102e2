"""What the CLI's commands do, as importable functions: run = train → evaluate → export.

TensorFlow is imported inside the functions that need it: generating from or
translating with an export folder runs on LiteRT alone.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path

from zoo.errors import Failure, Interrupted, UsageError
from zoo.recipe import load_recipe, recipe_hash, validate
from zoo.training.run_directory import RunDirectory, RunError

# How often training checkpoints an epoch in progress, besides each epoch's end: an
# interrupted run loses at most this much (an epoch of a word-level model takes 20 min
# here). Saving the model and optimizer takes a second or two.
CHECKPOINT_MINUTES = 10.0


def _seeded(recipe: dict, seed: int | None) -> dict:
    import keras

    if seed is not None:
        recipe = {**recipe, "seed": seed}
    keras.utils.set_random_seed(recipe["seed"])
    return recipe


def _task(recipe: dict):
    from zoo.tasks import get_task

    return get_task(recipe["task"])


def train_recipe(
    name_or_path: str,
    overrides=(),
    out=None,
    seed=None,
    resume=False,
    checkpoint_minutes=None,
):
    """Trains a recipe into its run directory; returns (run, task, data, training result).
    ``checkpoint_minutes``: how often an epoch in progress is checkpointed too (0: at
    epoch ends only; default ``CHECKPOINT_MINUTES``)."""
    if checkpoint_minutes is None:
        checkpoint_minutes = CHECKPOINT_MINUTES
    from zoo.training.distribute import distribution
    from zoo.training.run_directory import FollowerRun
    from zoo.training.trainer import train

    recipe = load_recipe(name_or_path, overrides)
    if recipe["train"]["distribute"] == "multi_worker" and not out:
        raise UsageError(
            "train.distribute multi_worker: give --out, the run directory every worker shares"
        )
    dist = distribution(recipe["train"])  # before any TensorFlow op
    recipe = _seeded(recipe, seed)
    if dist.chief:
        run = RunDirectory.for_recipe(recipe, out, resume)
    else:
        run = FollowerRun.for_worker(out, dist.worker)
    try:
        run.start(recipe, resume)  # which undoes itself when it fails or is interrupted
    except KeyboardInterrupt:
        raise Interrupted(f"while starting; {run.path} is as it was") from None
    try:
        task = _task(recipe)
        data = task.prepare(recipe, run, recipe["seed"])
        for warning in task.warnings(recipe, data):
            print(f"zoo: warning: {warning}", file=sys.stderr)
        stage = task.pretraining(recipe, data)
    except BaseException as error:
        run.discard()  # nothing was trained: the folder goes back to how it was
        run.unlock()
        if isinstance(error, KeyboardInterrupt):
            raise Interrupted(f"during data preparation; {run.path} is as it was") from None
        raise
    try:
        result = train(task, recipe, data, run, resume, stage, dist, checkpoint_minutes)
        if dist.strategy is not None and dist.chief:
            # evaluation and export read plain variables, not mirrored ones
            result.model = run.load_model(run.model_path)
        result.distribution = dist
        return run, task, data, recipe, result
    except BaseException as error:
        if dist.chief and not run.path.is_dir() and not isinstance(error, KeyboardInterrupt):
            run.unlock()
            raise Failure(
                f"{run.path}: the run folder disappeared during training (deleted or "
                "moved); nothing is left to resume"
            ) from None
        kept = run.has_checkpoint()
        if not kept or not dist.chief:  # nothing to resume (a worker's scratch: never)
            run.discard()
        run.unlock()
        if isinstance(error, KeyboardInterrupt) and kept:
            what = "finished epochs are" if run.has_finished_epoch() else "the epoch in progress is"
            raise Interrupted(f"{what} checkpointed: rerun with --resume") from None
        if isinstance(error, KeyboardInterrupt):
            raise Interrupted(f"no epoch had finished; {run.path} is as it was") from None
        raise


def run_recipe(
    name_or_path: str,
    overrides=(),
    out=None,
    seed=None,
    resume=False,
    checkpoint_minutes=None,
) -> dict:
    """``zoo run recipe``: train, evaluate on the held-out splits, export; returns metrics."""
    start = time.perf_counter()
    run, task, data, recipe, result = train_recipe(
        name_or_path, overrides, out, seed, resume, checkpoint_minutes
    )
    if not result.distribution.chief:  # the chief evaluates, exports and writes metrics
        run.discard()
        worker = result.distribution.worker
        print(f"zoo: worker {worker} done; the chief writes {out}/metrics.json", file=sys.stderr)
        return {"worker": worker, "epochs": result.epochs_done}
    try:
        metrics = task.evaluate(result.model, data, recipe, run)
        metrics.update(
            {
                "recipe": recipe["name"],
                "recipe_sha256": recipe_hash(recipe),
                "tokens_per_sec": round(result.tokens_per_sec, 1),
                "train_seconds": round(result.seconds, 1),
                "pretrain_seconds": round(result.pretrain_seconds, 1),
                "epochs": result.epochs_done,
                "best_epoch": result.best_epoch,
                "resumed_from_epoch": result.resumed_from,
                # for the model card of a shipped model
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores",
            }
        )
        if recipe["export"]["formats"]:
            metrics["export"] = _export(run, recipe, task, result.model, data)
        metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
        run.write_metrics(metrics)
    finally:
        run.unlock()
    metrics["run_dir"] = str(run.path)
    return metrics


def _export(
    run,
    recipe,
    task,
    model,
    data,
    formats=None,
    quantizations=None,
    out=None,
    beam_width=None,
    measure=True,
    keep_float=True,
) -> dict:
    """Exports a trained model into ``out`` (default: the run's ``export/``); returns
    where, and what the card measured. ``keep_float=False`` leaves the float TFLite file
    out when quantized ones are made."""
    formats = recipe["export"]["formats"] if formats is None else formats
    quantizations = recipe["export"]["quantize"] if quantizations is None else quantizations
    out = run.export if out is None else out
    from zoo.export.exporter import export_model

    start = time.perf_counter()
    exporter = task.exporter(model, recipe, run.path, data, beam_width)
    exporter.keep_float = keep_float
    card = export_model(
        exporter,
        out,
        formats,
        quantizations,
        measure,
    )
    return {"folder": str(out), "seconds": round(time.perf_counter() - start, 1), **card}


def export_run(
    run_dir: str,
    formats=("saved_model", "tflite"),
    quantizations=("dynamic",),
    out=None,
    beam_width=None,
    measure=True,
    keep_float=True,
) -> dict:
    """``zoo export``: a finished run's SavedModel and TFLite files, with their card."""
    run, recipe, task, model = load_run(run_dir)
    data = task.prepare(recipe, run, recipe["seed"])
    return _export(
        run, recipe, task, model, data, formats, quantizations, out, beam_width, measure, keep_float
    )


def load_run(run_dir: str):
    """A run directory or a pretrained model's name (verified): the run to read and write
    derived files in, its recipe, task and model."""
    import keras

    from zoo.pretrained.resolver import resolve_model

    resolved = resolve_model(run_dir)
    if resolved.entry is not None and resolved.entry.export_only:
        raise RunError(
            f"{run_dir}: an export-only model (a TFLite file for LiteRT, no model.keras): "
            "zoo translate, generate and evaluate run it; this needs a trained model"
        )
    run = RunDirectory(resolved.work_path)
    if resolved.entry is None:  # a folder by path: used only when zoo wrote it
        run.require_run()
    else:  # a catalog model's work folder, which zoo made in $ZOO_HOME
        run.mark()
    # checked again, which also fills settings added since the run was made with their defaults
    recipe = validate(run.read_recipe())
    model_path = resolved.path / run.model_path.name
    if not model_path.is_file():
        raise RunError(
            f"{run.path}: no model.keras (the run has not finished training; --resume it)"
        )
    task = _task(recipe)
    keras.utils.set_random_seed(recipe["seed"])
    model = run.load_model(model_path)
    _check_vocabularies(run, task, model)
    return run, recipe, task, model


def _check_vocabularies(run: RunDirectory, task, model) -> None:
    """Each of the task's artifacts that is a vocabulary has as many tokens as the model
    the run holds."""
    from zoo.data import Vocab

    for name, attribute in task.artifacts.items():
        if attribute is not None:
            size = len(Vocab.load(run.path / name))
            if size != getattr(model, attribute):
                raise RunError(
                    f"{run.path / name}: {size} tokens, but the model has "
                    f"{getattr(model, attribute)}; this vocabulary is not the model's"
                )


def _check_alpha(alpha) -> None:
    if alpha is not None and not math.isfinite(alpha):
        raise UsageError(f"--alpha: expected a finite number, got {alpha}")


def evaluate_run(run_dir: str, splits=None, beam_width=None, alpha=None) -> dict:
    """``zoo evaluate``: the metrics of a finished run, recomputed on ``splits``; a
    translator's on one split, decoded with ``beam_width`` and ``alpha`` when given.
    They are written to ``metrics-<settings>.json`` (and ``translations-<settings>.tsv``),
    never over the run's own ``metrics.json`` and ``translations.tsv``."""
    from zoo.pretrained.resolver import export_folder  # a shipped model's export: verified

    _check_alpha(alpha)
    folder = export_folder(run_dir)
    if folder is not None:
        return evaluate_export(folder, splits, beam_width, alpha)
    run, recipe, task, model = load_run(run_dir)
    recipe = _evaluation_recipe(recipe, splits, beam_width, alpha)
    run.results_label = _results_label(recipe)  # never over the run's own results
    # claimed before the work: a read-only run or a user's file of that name is refused
    # now, not after minutes of decoding
    run.result_path("metrics.json")
    data = task.prepare(recipe, run, recipe["seed"])
    metrics = task.evaluate(model, data, recipe, run)
    run.write_metrics(metrics)
    return metrics


def evaluate_export(folder: Path, splits=None, beam_width=None, alpha=None) -> dict:
    """``zoo evaluate`` of an export folder or an export-only model: the TFLite file it
    runs (the first it holds) on LiteRT, measured as a trained model is, on the recipe's
    split, decoded as ``export.json`` says unless ``beam_width`` / ``alpha`` are given.
    It writes nothing: an export folder holds what its export wrote, and only that."""
    from zoo.export.litert import load_export
    from zoo.recipe import read_yaml

    folder = Path(folder)
    runtime = load_export(folder)
    recipe = validate(read_yaml(folder / "recipe.yaml"))
    task = _task(recipe)
    missing = [name for name in task.artifacts if not (folder / name).is_file()]
    if missing:  # read from the export, never made there
        raise RunError(f"{folder}: no {missing[0]}, which its export writes")
    if "decode" in recipe:  # the export's own decoding settings, then the options
        exported = {"beam_width": runtime.beam_width, "alpha": runtime.length_penalty_alpha}
        beam_width = exported["beam_width"] if beam_width is None else beam_width
        alpha = exported["alpha"] if alpha is None else alpha
    recipe = _evaluation_recipe(recipe, splits, beam_width, alpha)
    if "decode" in recipe:
        runtime.beam_width = recipe["decode"]["beam_width"]
        runtime.length_penalty_alpha = recipe["decode"]["length_penalty_alpha"]
    data = task.prepare(recipe, RunDirectory(folder), recipe["seed"])
    return task.evaluate_export(runtime, data, recipe)


def _evaluation_recipe(recipe: dict, splits, beam_width, alpha) -> dict:
    """The recipe with ``zoo evaluate``'s ``--split``, ``--beam`` and ``--alpha`` in."""
    evaluate = dict(recipe["evaluate"])
    if splits and "splits" in evaluate:  # language models: any of the three
        evaluate["splits"] = list(splits)
    elif splits and "split" in evaluate:  # translators: one of validation and test
        if len(splits) > 1 or splits[0] not in ("validation", "test"):
            raise RunError(
                f"--split: a '{recipe['task']}' run is evaluated on one split, "
                f"validation or test, got {', '.join(splits)}"
            )
        evaluate["split"] = splits[0]
    elif splits:
        raise RunError(f"--split: a '{recipe['task']}' run is evaluated on its test split only")
    if beam_width is not None or alpha is not None:
        if "decode" not in recipe:
            raise RunError(f"--beam/--alpha: a '{recipe['task']}' run does not decode")
        decode = dict(recipe["decode"])
        if beam_width is not None:
            decode["beam_width"] = beam_width
        if alpha is not None:
            decode["length_penalty_alpha"] = alpha
        recipe = {**recipe, "decode": decode}
    # checked again with the options in: a wide --beam times the recipe's max_length
    # is refused now, as in a recipe, not after allocating its beam history
    return validate({**recipe, "evaluate": evaluate})


def _results_label(recipe: dict) -> str:
    """What a ``zoo evaluate`` measured, for its file names: ``test-beam1-alpha0``."""
    evaluate = recipe["evaluate"]
    parts = list(evaluate.get("splits") or [evaluate.get("split", "test")])
    if "decode" in recipe:
        decode = recipe["decode"]
        parts += [f"beam{decode['beam_width']}", f"alpha{decode['length_penalty_alpha']:g}"]
    return "-".join(parts)


def generate_from_run(
    run_dir: str, prefix: str, length: int, temperature=1.0, greedy=False, seed=None
) -> str:
    """``zoo generate``: a language model's continuation of ``prefix``; from an export
    folder, its TFLite file runs without TensorFlow."""
    from zoo.pretrained.resolver import export_folder  # a shipped model's export: verified

    if not greedy and not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"--temperature: expected a finite number above 0, got {temperature}")
    folder = export_folder(run_dir)
    if folder is not None:
        from zoo.export.litert import load_export

        generator = _exported(load_export(folder), "generate", run_dir)
        return generator.generate(prefix, length, temperature, greedy, seed)
    from zoo.data import Vocab

    run, recipe, task, model = load_run(run_dir)
    if "generate" not in task.actions:
        raise RunError(f"{run.path}: a '{recipe['task']}' run does not generate text")
    vocab = Vocab.load(run.path / "vocab.txt")
    return task.generator(model, vocab, recipe).generate(prefix, length, temperature, greedy, seed)


def translate_with_run(
    run_dir: str, sentences: list[str], beam_width=None, alpha=None
) -> list[str]:
    """``zoo translate``: a trained translator's translations of ``sentences``; from an
    export folder, its TFLite file runs without TensorFlow."""
    from zoo.decoding import TranslationInputError
    from zoo.pretrained.resolver import export_folder  # a shipped model's export: verified

    _check_alpha(alpha)
    for number, sentence in enumerate(sentences, start=1):
        if not sentence.strip():
            raise TranslationInputError(f"empty sentence (line {number} of the input)")
    folder = export_folder(run_dir)
    if folder is not None:
        from zoo.export.litert import load_export

        translator = _exported(load_export(folder), "translate", run_dir)
        return translator.translate(sentences, beam_width, alpha)
    from zoo.data import Vocab

    run, recipe, task, model = load_run(run_dir)
    if "translate" not in task.actions:
        raise RunError(f"{run.path}: a '{recipe['task']}' run does not translate")
    if beam_width is not None:  # within the recipe's bounds with the option in
        validate({**recipe, "decode": {**recipe["decode"], "beam_width": beam_width}})
    vocabs = [Vocab.load(run.path / name) for name in ("src_vocab.txt", "tgt_vocab.txt")]
    return task.translator(model, *vocabs, recipe).translate(sentences, beam_width, alpha)


def _exported(loaded, action: str, folder: str):
    if not hasattr(loaded, action):
        raise RunError(f"{folder}: this export does not {action}")
    return loaded
