"""Bad inputs about run folders (issue 24): a folder is a run only when zoo wrote it,
known by its marker (``zoo-run.json``) or, for a run of an earlier zoo, by its whole
content; never by a file name such as ``recipe.yaml``. Machinery in ``bad_inputs.py``."""

import json

import pytest
from bad_inputs import GEN, RUN, TRAIN_TINY, Case, check_case, write


def user_project(header: bool):
    """The issue's reproduction: a user's folder with a recipe.yaml (a copy of the run's,
    zoo's sha256 header and all, or the user's own), their own model.keras and logs/."""

    def damage(run):
        project = run.parent / "proj"
        (project / "logs").mkdir(parents=True)
        recipe = (run / "recipe.yaml").read_text(encoding="utf-8")
        if not header:
            recipe = recipe.split("\n", 1)[1]
        (project / "recipe.yaml").write_text(recipe, encoding="utf-8")
        (project / "model.keras").write_text("mine\n")
        (project / "logs" / "history.csv").write_text("my own log\n")

    return damage


def marker(**changes):
    def damage(run):
        path = run / "zoo-run.json"
        content = json.loads(path.read_text(encoding="utf-8"))
        for key, value in changes.items():
            if value is None:
                del content[key]
            else:
                content[key] = value
        path.write_text(json.dumps(content), encoding="utf-8")

    return damage


def without_marker_and(extra: str):
    """A run of an earlier zoo (no marker) that also holds a file of the user's."""

    def damage(run):
        (run / "zoo-run.json").unlink()
        (run / extra).write_text("the user's\n")

    return damage


def users_metrics_file(run):
    (run / "metrics-test.json").write_text('{"mine": true}\n')


RESUME_PROJ = [*TRAIN_TINY, "--out", "{tmp}/proj", "--resume"]

CASES = [
    Case(
        "resume-project-with-run-recipe",
        RESUME_PROJ,
        "not empty and not a zoo run",
        damage=user_project(header=True),
    ),
    Case(
        "resume-project-with-own-recipe",
        RESUME_PROJ,
        "not empty and not a zoo run",
        damage=user_project(header=False),
    ),
    Case(
        "evaluate-user-project",
        ["evaluate", "{tmp}/proj"],
        "proj: not a zoo run (zoo-run.json",
        damage=user_project(header=True),
    ),
    Case(
        "generate-user-project",
        ["generate", "{tmp}/proj", "--prefix", "time"],
        "proj: not a zoo run",
        damage=user_project(header=False),
    ),
    Case("marker-not-json", GEN, "zoo-run.json: not valid JSON", damage=write("zoo-run.json", "{")),
    Case("marker-a-list", GEN, "zoo-run.json: format: missing", damage=write("zoo-run.json", "[]")),
    Case("marker-other-format", GEN, "not a zoo run marker", damage=marker(format="zoo-export")),
    Case("marker-newer-version", GEN, "run marker version 9", damage=marker(format_version=9)),
    Case(
        "marker-version-a-string",
        GEN,
        "format_version: expected an integer",
        damage=marker(format_version="1"),
    ),
    Case(
        "marker-bad-run-id",
        GEN,
        "run_id: expected 32 hexadecimal digits",
        damage=marker(run_id="../../x"),
    ),
    Case("marker-no-entries", GEN, "zoo-run.json: entries: missing", damage=marker(entries=None)),
    Case(
        "marker-entry-a-path",
        GEN,
        "entries: expected top-level file names",
        damage=marker(entries=["../../etc"]),
    ),
    Case(
        "marker-nested-deep",
        GEN,
        "nested more than 64 levels deep",
        damage=write("zoo-run.json", "[" * 100_000 + "]" * 100_000),
    ),
    Case(
        "marker-too-large",
        GEN,
        "a run marker is at most 1,048,576",
        damage=write("zoo-run.json", " " * (1 << 20) + "{}"),
    ),
    Case(
        "marker-not-utf8", GEN, "zoo-run.json: not UTF-8", damage=write("zoo-run.json", b"\xff{}")
    ),
    Case(
        "evaluate-over-users-file",
        ["evaluate", "{run}", "--split", "test"],
        "metrics-test.json: not written by zoo",
        damage=users_metrics_file,
    ),
    Case(
        "legacy-run-with-users-file",
        [*TRAIN_TINY, "--out", "{run}", "--resume"],
        "not empty and not a zoo run",
        damage=without_marker_and("thesis.tex"),
    ),
    Case(
        "evaluate-legacy-run-with-users-file",
        ["evaluate", "{run}"],
        "'thesis.tex', which a run does not write",
        damage=without_marker_and("thesis.tex"),
    ),
    Case(
        "out-dot-users-folder",
        [*RUN, "lm-gru", "--out", "."],
        "not empty and not a zoo run",
        files={"notes.txt": "keep\n"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_folder_is_a_run_only_when_zoo_wrote_it(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)
