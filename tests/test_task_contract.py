"""The task contract (issue 25): every registered task is a ``zoo.tasks.Task``, no task
is known by name outside its own module, and every shipped recipe of every task trains,
evaluates and loads at tiny sizes through the task's own ``tiny_overrides`` — tests
generated over the registry, as timm's are over its models."""

import inspect
import re
from pathlib import Path

import pytest

import zoo
from zoo import registry
from zoo.recipe import builtin_recipe_paths, read_yaml
from zoo.tasks import Task

PACKAGE = Path(zoo.__file__).resolve().parent


# The shipped recipes whose tiny run is in the default set (seconds each); the others'
# (tens of seconds each on two cores: the translators' beam search traces for long) are
# in the slow set, which CI runs too.
DEFAULT_SET = {"lm-rnn", "ar-mlp-sine"}


def shipped_recipes():
    """(task, recipe name) of every shipped recipe."""
    return [(read_yaml(path)["task"], name) for name, path in builtin_recipe_paths().items()]


def shipped_recipe_params():
    return [
        pytest.param(task, name, id=name, marks=() if name in DEFAULT_SET else pytest.mark.slow)
        for task, name in shipped_recipes()
    ]


def test_every_task_is_a_registered_task_instance():
    assert registry.tasks.names(), "no task registered"
    for entry in registry.tasks.entries():
        assert isinstance(entry.obj, Task), entry.name
        assert entry.obj.name == entry.name
        assert entry.obj.recipe_sections, f"{entry.name}: no recipe sections"


def test_every_built_in_task_has_a_shipped_recipe():
    built_in = {entry.name for entry in registry.tasks.entries() if entry.provider == "zoo"}
    assert built_in <= {task for task, _ in shipped_recipes()}


def test_no_task_name_outside_its_own_module():
    """A task's name as a string literal appears only in the module that defines it."""
    for entry in registry.tasks.entries():
        if entry.provider != "zoo":
            continue
        home = Path(inspect.getsourcefile(type(entry.obj))).resolve()
        literal = re.compile(rf"""["']{re.escape(entry.name)}["']""")
        found = [
            f"{path.relative_to(PACKAGE)}:{number}"
            for path in PACKAGE.rglob("*.py")
            if path.resolve() != home
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if literal.search(line)
        ]
        assert not found, f"task name {entry.name!r} outside {home.name}: {found}"


def test_nothing_asks_a_task_what_it_has():
    found = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"hasattr\(\s*(self\.)?task\b", path.read_text(encoding="utf-8"))
    ]
    assert not found, f"hasattr(task, ...) in {found}: declare it in zoo.tasks.Task instead"


def test_an_unknown_task_names_the_registered_ones():
    from zoo.recipe import RecipeError, validate

    with pytest.raises(RecipeError) as error:
        validate({"name": "x", "task": "language_modle"})
    message = str(error.value)
    assert "did you mean 'language_model'" in message
    for name in registry.tasks.names():
        assert name in message


def test_tasks_and_export_formats_are_read_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from zoo import registry; "
        "print(registry.tasks.names(), registry.exporters.names()); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


@pytest.mark.parametrize(("task_name", "recipe"), shipped_recipe_params())
def test_shipped_recipe_trains_evaluates_and_loads_at_tiny_size(task_name, recipe, tmp_path):
    from zoo.pipeline import run_recipe

    task = registry.tasks.get(task_name)
    overrides = [*task.tiny_overrides(tmp_path), "train.epochs=1", "export.formats=[]"]
    run = tmp_path / "run"
    metrics = run_recipe(recipe, overrides, out=str(run), seed=0)

    for name in ("model.keras", "recipe.yaml", "metrics.json", *task.artifacts):
        assert (run / name).is_file(), f"{recipe}: no {name}"
    numbers = {key: value for key, value in metrics.items() if isinstance(value, float)}
    assert numbers, f"{recipe}: no measured metric in {sorted(metrics)}"

    loaded = zoo.load(str(run))
    assert loaded.preset.task is task and loaded.preset.recipe["name"] == recipe
    if "generate" in task.actions:
        assert isinstance(loaded.generate("the", length=3, greedy=True), str)
    if "translate" in task.actions:
        assert isinstance(loaded.translate("go ."), str)


@pytest.mark.slow
def test_the_sine_task_exports_through_the_registered_formats(tmp_path):
    """The autoregressive task's export is an export like the others: export.json with
    its files, a SavedModel and builtin-only TFLite files that agree with Keras."""
    import json

    from zoo.pipeline import export_run, run_recipe

    run = tmp_path / "run"
    run_recipe("ar-mlp-sine", ["train.epochs=1", "export.formats=[]"], out=str(run))
    card = export_run(str(run), formats=("saved_model", "tflite"), quantizations=("dynamic",))
    manifest = json.loads((run / "export" / "export.json").read_text())
    assert manifest["task"] == "autoregressive" and manifest["signatures"]["serve"]
    listed = {entry["path"] for entry in manifest["files"]}
    assert {"model.tflite", "model-dynamic.tflite", "saved_model/saved_model.pb"} <= listed
    differences = [value["max_abs_difference"] for value in card["parity"]["backends"].values()]
    assert len(differences) == 5 and max(differences) < 1e-4
