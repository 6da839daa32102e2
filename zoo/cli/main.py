"""``zoo``: one click CLI for listing, data, training, evaluation and generation.

Each command parses its arguments and calls one function of the library; TensorFlow
is imported inside the commands that need it, so ``zoo --help`` answers at once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys

import click

from zoo import registry
from zoo.export.formats import QUANTIZATIONS
from zoo.limits import (
    MAX_BEAM_WIDTH,
    MAX_CHECKPOINT_MINUTES,
    MAX_GENERATE_LENGTH,
    MAX_LENGTH_PENALTY_ALPHA,
    MAX_SEED,
    MAX_WORKERS,
)

DEBUG_ENV = "ZOO_DEBUG"


def reports_errors(command):
    """Reports any error as one line on stderr, classified by ``zoo.errors.classify``:
    exit code 2 for the library's input errors, 1 for a failure at run time (disk full,
    out of memory, a bug), 128 + the signal's number for Ctrl-C (130), SIGTERM (143) and
    SIGHUP (129). With ``ZOO_DEBUG=1`` the error is raised again, traceback and all."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from zoo.errors import classify, received_signal

        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as error:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            name = received_signal["name"]
            signal_note = "" if name == "SIGINT" else f" ({name})"
            click.echo(
                f"zoo: interrupted{signal_note}{'; ' + str(error) if str(error) else ''}",
                err=True,
            )
            sys.exit(128 + received_signal["number"])
        except Exception as error:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            code, message = classify(error)
            click.echo(f"zoo: error: {message}", err=True)
            sys.exit(code)

    return wrapper


class RegisteredChoice(click.Choice):
    """A choice among a registry's names (plugins' included), read when the option is
    used or its help shown, not when the CLI is imported."""

    def __init__(self, names):
        self.names = names
        super().__init__((), case_sensitive=True)

    @property
    def choices(self):
        return tuple(self.names.names())

    @choices.setter
    def choices(self, value):  # click.Choice sets them at construction: they are read live
        pass


class OneLineUsageError(click.UsageError):
    """A usage error that click would print as a usage block: printed as one line."""

    def show(self, file=None):
        where = f" (see '{self.ctx.command_path} --help')" if self.ctx else ""
        click.echo(f"zoo: error: {self.format_message()}{where}", err=True)


class ZooGroup(click.Group):
    """A command group whose usage errors (a bad option value, a missing argument) are one
    line with exit code 2, like the library's own."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise _one_line_usage(error) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _one_line_usage(error) from None


def _one_line_usage(error: click.UsageError) -> click.UsageError:
    # a group called without a command shows its help (click ≥ 8.2 raises this for it)
    if isinstance(error, OneLineUsageError) or type(error).__name__ == "NoArgsIsHelpError":
        return error
    return OneLineUsageError(" ".join(error.format_message().split()), error.ctx)


# Characters that act on a terminal instead of showing (NUL, CR, escape sequences, the
# C1 controls) or silently reorder what follows (the bidirectional overrides and
# isolates): a vocabulary or a generated text may hold any of them. They are printed as
# \uXXXX, which in JSON output is the same character's escape.
TERMINAL_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def for_terminal(text: str) -> str:
    return TERMINAL_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def echo_json(value):
    click.echo(for_terminal(json.dumps(value, indent=2, ensure_ascii=False)))


def echo_rows(rows, as_json, widths):
    """Rows as JSON, or as a table whose columns are at least ``widths`` (key → width,
    0 = rest) and as wide as their longest value, so that a long name keeps the columns
    aligned."""
    if as_json:
        echo_json(rows)
        return
    rows = list(rows)
    widths = {
        key: max([width] + [len(str(row[key])) + 1 for row in rows]) if width else 0
        for key, width in widths.items()
    }
    for row in rows:
        cells = (f"{row[key]:<{width}}" if width else row[key] for key, width in widths.items())
        click.echo(for_terminal(" ".join(cells)))


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(dir_okay=False),
    help="A registry.yaml of your own whose pretrained models join the shipped ones "
    "(default: $ZOO_REGISTRY).",
)
def cli(registry_file):
    """zoo: recurrent sequence models (RNN, GRU, LSTM, seq2seq) built from registered
    layers, trained, evaluated and exported from recipes."""
    if registry_file:
        os.environ["ZOO_REGISTRY"] = registry_file


@cli.group(name="list")
def list_group():
    """List registered layers or recipes."""


@list_group.command(name="layers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def list_layers(as_json):
    """Each registered layer: its name, class and the distribution that registered it."""
    from zoo.registry import layer_table

    echo_rows(layer_table(), as_json, {"name": 16, "class": 44, "provider": 0})


@list_group.command(name="recipes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def list_recipes(as_json):
    """Each recipe: its name, task and description."""
    from zoo.recipe import recipe_table

    echo_rows(recipe_table(), as_json, {"name": 16, "task": 16, "description": 0})


@cli.group(name="data")
def data_group():
    """The shipped datasets (offline TFDS builders)."""


@data_group.command(name="list")
@reports_errors
def data_list():
    """The dataset names."""
    from zoo.registry import dataset_names

    for name in dataset_names():
        click.echo(name)


@data_group.command(name="show")
@click.argument("sources", nargs=-1, required=True, metavar="NAME | FILE | TRAIN VALIDATION TEST")
@click.option(
    "--recipe",
    help="Describe the data as this recipe prepares it (default for files: lm-lstm, or "
    "seq2seq-attn for .tsv).",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe value."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def data_show(sources, recipe, overrides, as_json):
    """A dataset's splits and sizes, token counts, vocabulary size and source checksum; or
    a file of your own (one, split 90/5/5, or three: train, validation, test) as a recipe
    prepares it: tokens, vocabulary, out-of-vocabulary rate per split, malformed lines."""
    from zoo.data import describe
    from zoo.data.descriptions import describe_recipe_data
    from zoo.recipe import RecipeError, load_recipe
    from zoo.registry import dataset_names

    if len(sources) == 1 and recipe is None and not overrides and sources[0] in dataset_names():
        description = describe(sources[0])
    else:
        if len(sources) not in (1, 3):
            raise RecipeError(
                f"data show: give one dataset or file, or three files (train, validation, "
                f"test), got {len(sources)}"
            )
        source = (
            sources[0]
            if len(sources) == 1
            else dict(zip(("train", "validation", "test"), sources, strict=True))
        )
        if recipe is None:
            recipe = "seq2seq-attn" if sources[0].endswith(".tsv") else "lm-lstm"
        description = describe_recipe_data(load_recipe(recipe, [*overrides], source))
    if as_json:
        echo_json(description)
        return
    for key, value in description.items():
        click.echo(for_terminal(f"{key}: {json.dumps(value, ensure_ascii=False)}"))


recipe_options = [
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="PATH=VALUE",
        help="Override a recipe value, e.g. --set train.epochs=3 (repeatable).",
    ),
    click.option(
        "--out",
        type=click.Path(file_okay=False),
        help="Run directory (default runs/<recipe>/<time>/).",
    ),
    click.option(
        "--seed", type=click.IntRange(0, MAX_SEED), help="Random seed (default: the recipe's)."
    ),
    click.option(
        "--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint."
    ),
    click.option(
        "--checkpoint-minutes",
        type=click.FloatRange(0, MAX_CHECKPOINT_MINUTES),
        help="Checkpoint an epoch in progress this often too, so that --resume goes on from "
        "that batch (default 10; 0: at the end of each epoch only). Runs of one process.",
    ),
    click.option(
        "--workers",
        type=click.IntRange(2, MAX_WORKERS),
        help="Train as N worker processes on this machine (train.distribute multi_worker, "
        "TF_CONFIG on 127.0.0.1 ports); on a cluster run one zoo per host with TF_CONFIG.",
    ),
]


def with_recipe_options(command):
    for option in reversed(recipe_options):
        command = option(command)
    return command


# A translator's decoding settings, for `zoo translate` and `zoo evaluate`.
decoding_options = [
    click.option(
        "--beam",
        "beam_width",
        type=click.IntRange(1, MAX_BEAM_WIDTH),
        help="Translators: beam width k (1 = greedy; default: the recipe's).",
    ),
    click.option(
        "--alpha",
        type=click.FloatRange(0.0, MAX_LENGTH_PENALTY_ALPHA),
        help="Translators: length penalty α of the score (1/L^α) log P (default: the recipe's).",
    ),
]


def with_decoding_options(command):
    for option in reversed(decoding_options):
        command = option(command)
    return command


@cli.command(name="kernels")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a line.")
@reports_errors
def kernels_command(as_json):
    """Build the native LSTM training kernel now (training builds it on first use) and
    say where it is; exit 1 when it cannot be built (training then runs TensorFlow's ops,
    with the same results, slower)."""
    from zoo.layers import native

    report = native.status(build=True)
    if as_json:
        echo_json(report)
    elif not report["enabled"]:
        click.echo(f"native LSTM kernel: off ({native.SWITCH}=0)")
    elif report["error"]:
        click.echo(f"zoo: native LSTM kernel not available: {report['error']}", err=True)
    else:
        click.echo(f"native LSTM kernel: {report['path']}")
    if report["enabled"] and report["error"]:
        sys.exit(1)


@cli.group(name="run")
def run_group():
    """Run a whole recipe: train → evaluate → export."""


@run_group.command(name="recipe")
@click.argument("recipe")
@with_recipe_options
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON, nothing else.")
@reports_errors
def run_recipe_command(recipe, overrides, out, seed, resume, checkpoint_minutes, workers, as_json):
    """Train, evaluate and export RECIPE (a name from `zoo list recipes`, or a YAML path),
    then say in a few lines what came of it and what to try next."""
    from zoo.pipeline import run_recipe
    from zoo.reports.summary import run_summary

    if workers:
        launch_workers("run", recipe, overrides, out, seed, resume, workers, as_json)
        return
    metrics = run_recipe(recipe, overrides, out, seed, resume, checkpoint_minutes)
    echo_result(metrics, as_json, run_summary)


def echo_result(result, as_json, summary):
    """``result`` as JSON, or as the lines ``summary(result)`` words for a person."""
    if as_json:
        echo_json(result)
        return
    for line in summary(result):
        click.echo(for_terminal(line))


def launch_workers(command, recipe, overrides, out, seed, resume, workers, as_json=False):
    """``--workers N``: the same command as N local worker processes sharing one run
    directory (``zoo.training.launch``)."""
    from zoo.recipe import load_recipe
    from zoo.training.launch import launch
    from zoo.training.run_directory import RunDirectory

    if out is None:  # one directory for all, chosen here
        out = str(RunDirectory.for_recipe(load_recipe(recipe, overrides), None, resume).path)
    else:  # refused here, before N processes start TensorFlow to find out
        RunDirectory(out).check_usable()
    argv = [*(["run", "recipe"] if command == "run" else ["train"]), recipe]
    for assignment in overrides:
        argv += ["--set", assignment]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if resume:
        argv.append("--resume")
    if as_json:
        argv.append("--json")
    launch(argv, workers, out)


@cli.command(name="train")
@click.argument("recipe")
@with_recipe_options
@reports_errors
def train_command(recipe, overrides, out, seed, resume, checkpoint_minutes, workers):
    """Train RECIPE only (no evaluation or export)."""
    from zoo.pipeline import train_recipe

    if workers:
        launch_workers("train", recipe, overrides, out, seed, resume, workers)
        return
    run, *_, result = train_recipe(recipe, overrides, out, seed, resume, checkpoint_minutes)
    run.unlock()
    if not result.distribution.chief:  # a worker's scratch folder; the chief has the run
        run.discard()
        return
    click.echo(str(run.path))


@cli.command(name="evaluate")
@click.argument("run_dir", metavar="RUN_DIR|MODEL")
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice(["train", "validation", "test"]),
    help="Split(s) to evaluate (default: the recipe's).",
)
@with_decoding_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def evaluate_command(run_dir, splits, beam_width, alpha, as_json):
    """Evaluate a finished run (a translator: on one split, test by default)."""
    from zoo.pipeline import evaluate_run
    from zoo.reports.summary import evaluation_summary

    metrics = evaluate_run(run_dir, splits, beam_width, alpha)
    echo_result(metrics, as_json, lambda metrics: evaluation_summary(run_dir, metrics))


@cli.command(name="export")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR|MODEL...")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=RegisteredChoice(registry.exporters),
    help="What to export, a registered format (repeatable; default: every one but web). "
    "Several models with --format web and --out make a gallery.",
)
@click.option(
    "--quantize",
    "quantizations",
    multiple=True,
    type=click.Choice(QUANTIZATIONS),
    help="TFLite quantizations beside the float file (repeatable; default: dynamic).",
)
@click.option("--out", type=click.Path(file_okay=False), help="Export folder (default RUN/export).")
@click.option(
    "--beam",
    "beam_width",
    type=click.IntRange(min=1, max=64),
    help="Translators: the beam width the TFLite decode_step is made for (default: the recipe's).",
)
@click.option("--no-measure", is_flag=True, help="Skip parity, latency and quality measurements.")
@click.option(
    "--no-float",
    is_flag=True,
    help="Leave the float model.tflite out: only the --quantize files (a phone build).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON, nothing else.")
@reports_errors
def export_command(
    run_dirs, formats, quantizations, out, beam_width, no_measure, no_float, as_json
):
    """Export a finished run as a SavedModel and builtin-only TFLite files, with
    export.json and a mobile card (parity, latency, quality of each quantization)."""
    from zoo.export.formats import default_formats
    from zoo.pipeline import export_run

    if len(run_dirs) > 1:
        from zoo.export.web.gallery import export_gallery

        folder = export_gallery(
            run_dirs, formats, quantizations or ("dynamic",), out, beam_width, not no_measure
        )
        if as_json:
            echo_json({"gallery": str(folder), "models": list(run_dirs)})
        else:
            click.echo(f"{folder}: a gallery of {len(run_dirs)} models (zoo serve {folder})")
        return
    run_dir = run_dirs[0]
    result = export_run(
        run_dir,
        formats or default_formats(),
        quantizations or ("dynamic",),
        out,
        beam_width,
        measure=not no_measure,
        keep_float=not no_float,
    )
    from zoo.reports.summary import export_summary

    echo_result(result, as_json, export_summary)


@cli.command(name="serve")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0: any free port.",
)
@reports_errors
def serve_command(folder, port):
    """Serve a web export (zoo export MODEL --format web) on 127.0.0.1 until Ctrl-C."""
    from zoo.export.web.serve import serve

    serve(folder, port, announce=lambda line: click.echo(line))


@cli.command(name="generate")
@click.argument("run_dir", metavar="RUN_DIR|MODEL")
@click.option("--prefix", required=True, help="Text to continue.")
@click.option(
    "--length",
    default=50,
    show_default=True,
    type=click.IntRange(1, MAX_GENERATE_LENGTH),
    help="Tokens to generate.",
)
@click.option("--greedy", is_flag=True, help="Always take the most likely token.")
@click.option(
    "--temperature",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Sampling temperature (finite, above 0).",
)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Seed of the sampling.")
@reports_errors
def generate_command(run_dir, prefix, length, greedy, temperature, seed):
    """Continue PREFIX with a trained language model."""
    from zoo.pipeline import generate_from_run

    click.echo(for_terminal(generate_from_run(run_dir, prefix, length, temperature, greedy, seed)))


@cli.command(name="translate")
@click.argument("run_dir", metavar="RUN_DIR|MODEL")
@click.argument("sentence", required=False)
@with_decoding_options
@click.option(
    "--attention",
    "attention_png",
    type=click.Path(dir_okay=False),
    help="Also draw the attention weights of SENTENCE's translation as a heat map into this "
    "PNG file (a run with an attention decoder).",
)
@reports_errors
def translate_command(run_dir, sentence, beam_width, alpha, attention_png):
    """Translate SENTENCE, or each line of standard input, with a trained translator."""
    from zoo.pipeline import translate_with_run

    if attention_png is not None:
        from zoo.errors import UsageError
        from zoo.reports.figures import attention_map_of_run

        if sentence is None:
            raise UsageError("--attention: give the SENTENCE whose translation to draw")
        translation = attention_map_of_run(run_dir, sentence, attention_png, beam_width, alpha)
        click.echo(for_terminal(translation))
        return
    sentences = [sentence] if sentence is not None else [line.rstrip("\n") for line in sys.stdin]
    for translation in translate_with_run(run_dir, sentences, beam_width, alpha):
        click.echo(for_terminal(translation))


@cli.group(name="models")
def models_group():
    """Pretrained models: registry.yaml, plugins' and your own (--registry)."""


@models_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_errors
def models_list(as_json):
    """Each pretrained model: its name, task and description."""
    from zoo.pretrained.catalog import model_table

    echo_rows(model_table(), as_json, {"name": 24, "task": 16, "description": 0})


@models_group.command(name="info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the whole entry as JSON.")
@reports_errors
def models_info(name, as_json):
    """A pretrained model's entry: recipe, licences, metrics and files."""
    from zoo.pretrained.catalog import load_catalog
    from zoo.reports.summary import model_summary

    echo_result(load_catalog().get(name).summary(), as_json, model_summary)


@models_group.command(name="verify")
@click.argument("name", required=False)
@reports_errors
def models_verify(name):
    """Check every file's sha256 and size (of NAME, or of every model) and report the files
    no registry entry accounts for; exit 1 on any problem."""
    from zoo.pretrained.resolver import verify_models

    problems = verify_models(name)
    for line in problems:
        click.echo(f"zoo: {line}", err=True)
    if problems:
        sys.exit(1)
    click.echo("ok")


@models_group.command(name="add")
@click.argument("run_dir", type=click.Path(file_okay=False), metavar="RUN_DIR|EXPORT_DIR")
@click.option("--name", required=True, help="The pretrained model's name.")
@click.option("--description", help="One line (default: the recipe's).")
@click.option("--replace", is_flag=True, help="Replace a model of that name.")
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave out the run's files matching GLOB, e.g. 'export/saved_model/*' (repeatable).",
)
@reports_errors
def models_add(run_dir, name, description, replace, exclude):
    """Copy a finished run into saved_models/NAME/ with its card and registry entry
    (not its checkpoints/, logs/ or pretrain/). An export folder keeping one TFLite file
    (--exclude the others) makes an export-only model, for phones: zoo translate and zoo
    generate run it on LiteRT, and its metrics are that file's, from the export's card."""
    from zoo.pretrained.publish import add_model

    entry = add_model(run_dir, name, description, replace, exclude=exclude)
    size = sum(artifact["size"] for artifact in entry["artifacts"].values())
    click.echo(f"{name}: {len(entry['artifacts'])} files, {size / 1e6:.1f} MB")


@models_group.command(name="pull")
@click.argument("name")
@reports_errors
def models_pull(name):
    """Download a pretrained model's remote files into the cache ($ZOO_HOME/models), one
    pull of a model at a time, each file within ZOO_DOWNLOAD_TIMEOUT (seconds without a
    byte, default 60) and ZOO_DOWNLOAD_MIN_RATE (bytes a second, default 20,000)."""
    from zoo.pretrained.resolver import pull

    pulled = pull(name)
    click.echo(f"{name}: {len(pulled)} file(s) fetched, all verified")


def main():
    """The ``zoo`` program: TensorFlow's start-up lines kept quiet, then the CLI."""
    import signal

    from zoo.cli.quiet_tensorflow import quiet_tensorflow
    from zoo.errors import terminate_on

    # a run stopped by its service manager, a closed terminal or `kill` cleans up as one
    # stopped by Ctrl-C does, instead of dying with its start half made
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, terminate_on)
    quiet_tensorflow()
    cli()


if __name__ == "__main__":
    main()
