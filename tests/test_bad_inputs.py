"""Bad inputs across recipes, --set, data files, run directories, checkpoints, models and
CLI options (issue 14): each gives its exit code and one stderr line that names the
problem, changes nothing outside the run and loses nothing inside it. The machinery is in
``bad_inputs.py``; the other ``test_bad_inputs_*.py`` modules add the cases of issue 24.
"""

import importlib
from pathlib import Path

import pytest
from bad_inputs import (
    GEN,
    OUT,
    RESUME,
    RUN,
    TRAIN_TINY,
    TSV,
    Case,
    alias_bomb,
    check_case,
    held_lock,
    recipe_text,
    shorter_vocab,
    write,
    zip_of_junk,
)

CASES = [
    # ---------------------------------------------------------------- recipe files
    Case("recipe-missing", [*RUN, "{tmp}/absent.yaml"], "no such recipe file"),
    Case("recipe-unknown-name", [*RUN, "lm-grux"], "unknown recipe 'lm-grux'"),
    Case("recipe-not-yaml", [*RUN, "{tmp}/r.yaml"], "not valid YAML", files={"r.yaml": "a: ["}),
    Case("recipe-a-list", [*RUN, "{tmp}/r.yaml"], "expected a mapping", files={"r.yaml": "[1]"}),
    Case("recipe-not-utf8", [*RUN, "{tmp}/r.yaml"], "not UTF-8", files={"r.yaml": b"a: \xff\n"}),
    Case(
        "recipe-too-large",
        [*RUN, "{tmp}/r.yaml"],
        "a recipe is at most 1,048,576",
        files={"r.yaml": "# " + "x" * (1 << 20) + "\n"},
    ),
    Case(
        "recipe-billion-laughs",
        [*RUN, "{tmp}/r.yaml"],
        "YAML aliases",
        files={"r.yaml": alias_bomb()},
    ),
    Case(
        "recipe-alias-loop", [*RUN, "{tmp}/r.yaml"], "YAML aliases", files={"r.yaml": "a: &a [*a]"}
    ),
    Case(
        "recipe-python-tag",
        [*RUN, "{tmp}/r.yaml"],
        "not valid YAML",
        files={"r.yaml": "a: !!python/object/apply:os.system ['touch pwned']\n"},
    ),
    Case(
        "recipe-impossible-date",
        [*RUN, "{tmp}/r.yaml"],
        "not valid YAML",
        files={"r.yaml": "name: 2001-02-30\n"},
    ),
    Case(
        "recipe-nested-too-deep",
        [*RUN, "{tmp}/r.yaml"],
        "r.yaml: nested more than 64 levels deep",
        files={"r.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n"},
    ),
    Case(
        "name-escapes-runs",
        [*RUN, "{tmp}/r.yaml"],
        "name: expected a plain name",
        files={"r.yaml": recipe_text(name="../../../elsewhere")},
    ),
    Case(
        "name-absolute",
        [*RUN, "{tmp}/r.yaml"],
        "name: expected a plain name",
        files={"r.yaml": recipe_text(name="/tmp/elsewhere")},
    ),
    Case(
        "name-empty",
        [*RUN, "{tmp}/r.yaml"],
        "name: expected a plain name",
        files={"r.yaml": recipe_text(name="")},
    ),
    Case(
        "name-not-a-string",
        [*RUN, "{tmp}/r.yaml"],
        "name: expected a string",
        files={"r.yaml": recipe_text(name=[1])},
    ),
    Case(
        "task-unknown",
        [*RUN, "{tmp}/r.yaml"],
        "task: unknown task 'language_modl'; did you mean",
        files={"r.yaml": recipe_text(task="language_modl")},
    ),
    Case(
        "task-a-list",
        [*RUN, "{tmp}/r.yaml"],
        "task: unknown task",
        files={"r.yaml": recipe_text(task=[1])},
    ),
    Case(
        "key-unknown",
        [*RUN, "{tmp}/r.yaml"],
        "train.epoch: unknown key; did you mean 'epochs'",
        files={"r.yaml": recipe_text(train__epoch=2)},
    ),
    Case(
        "layers-missing",
        [*RUN, "{tmp}/r.yaml"],
        "model.layers: required",
        files={"r.yaml": recipe_text(model={})},
    ),
    Case(
        "layers-empty",
        [*RUN, "{tmp}/r.yaml"],
        "model.layers: needs at least one layer",
        files={"r.yaml": recipe_text(model__layers=[])},
    ),
    Case(
        "layer-name-a-list",
        [*RUN, "{tmp}/r.yaml"],
        "model.layers[0].name: expected a string",
        files={"r.yaml": recipe_text(model__layers=[{"name": ["gru"]}])},
    ),
    Case(
        "learning-rate-nan",
        [*RUN, "{tmp}/r.yaml"],
        "train.learning_rate: expected a finite number",
        files={"r.yaml": recipe_text().replace("epochs: 1", "epochs: 1\n  learning_rate: .nan")},
    ),
    Case(
        "seed-too-large",
        [*RUN, "{tmp}/r.yaml"],
        "seed: must be at most 4294967295",
        files={"r.yaml": recipe_text(seed=2**32)},
    ),
    # ---------------------------------------------------------------- --set
    Case("set-no-equals", [*RUN, "lm-gru", "--set", "train.epochs"], "expected PATH=VALUE"),
    Case("set-empty-path", [*RUN, "lm-gru", "--set", "=3"], "empty path"),
    Case(
        "set-not-an-integer",
        [*RUN, "lm-gru", "--set", "train.epochs=abc"],
        "train.epochs: expected an integer, got 'abc'",
    ),
    Case(
        "set-no-such-layer", [*RUN, "lm-gru", "--set", "model.layers[5].units=3"], "does not exist"
    ),
    Case("set-into-a-number", [*RUN, "lm-gru", "--set", "train.epochs.x=1"], "is not a mapping"),
    Case("set-name-path", [*RUN, "lm-gru", "--set", "name=../x"], "name: expected a plain name"),
    Case("set-seed-negative", [*RUN, "lm-gru", "--set", "seed=-1"], "seed: must be at least 0"),
    Case("set-epochs-zero", [*RUN, "lm-gru", "--set", "train.epochs=0"], "must be at least 1"),
    Case(
        "set-learning-rate-inf",
        [*RUN, "lm-gru", "--set", "train.learning_rate=.inf"],
        "expected a finite number",
    ),
    Case(
        "set-alias-bomb",
        [*RUN, "lm-gru", "--set", "description=" + alias_bomb().replace("\n", ", ").join("{}")],
        "YAML aliases",
    ),
    Case(
        "set-beam-too-wide",
        [*RUN, "seq2seq-gru", "--set", "decode.beam_width=1000"],
        "decode.beam_width: must be at most 100",
    ),
    Case(
        "set-layer-refuses",
        [*RUN, "lm-gru", "--set", "model.layers[0].recurrent_dropout=1.5"],
        "model.layers[0].recurrent_dropout: must be below 1.0, got 1.5",
    ),
    Case(
        "set-unknown-layer",
        [*RUN, "lm-gru", "--set", "model.layers[0].name=lstmm"],
        "unknown layer 'lstmm'",
    ),
    # ---------------------------------------------------------------- data files
    Case(
        "data-missing-into-user-folder",  # issue 14, reproduction 1
        [*RUN, "lm-gru", "--set", "data.source=typo.txt", "--out", "{tmp}/mine"],
        "not empty and not a zoo run",
        files={"mine/notes.txt": "keep\n"},
    ),
    Case(
        "data-missing-into-empty-folder",
        [*RUN, "lm-gru", "--set", "data.source=typo.txt", "--out", "{tmp}/empty"],
        "typo.txt: file not found",
        files={"empty/": None},
    ),
    Case(
        "data-missing-default-out",
        [*RUN, "lm-gru", "--set", "data.source=typo.txt"],
        "typo.txt: file not found",
    ),
    Case(
        "data-no-letters",
        [*RUN, "lm-gru", "--set", "data.source={tmp}/digits.txt", *OUT],
        "digits.txt: no letters, and a corpus is cleaned to lowercase letters",
        files={"digits.txt": "1234 5678 !!! ???\n" * 50},
    ),
    Case(
        "data-too-short",
        [*RUN, "lm-gru", "--set", "data.source={tmp}/short.txt", *OUT],
        "short.txt (train split, after cleaning)",
        files={"short.txt": "a few words\n"},
    ),
    Case(
        "data-bad-utf8",
        [*RUN, "lm-gru", "--set", "data.source={tmp}/bad.txt", *OUT],
        "bad.txt: bad UTF-8 at line 2",
        files={"bad.txt": b"fine\nnot \xff fine\n"},
    ),
    Case(
        "data-empty",
        [*RUN, "lm-gru", "--set", "data.source={tmp}/empty.txt", *OUT],
        "empty.txt: file is empty",
        files={"empty.txt": "\n\n"},
    ),
    Case(
        "data-a-folder",
        [*RUN, "lm-gru", "--set", "data.source={tmp}/folder", *OUT],
        "folder: file not found",
        files={"folder/": None},
    ),
    Case(
        "tsv-no-tab",
        TSV,
        "pairs.tsv: not a source<TAB>target file: none of its first 10 lines",
        files={"pairs.tsv": "go .\nva !\n" * 20},
    ),
    Case(
        "tsv-binary",
        TSV,
        "pairs.tsv: not a source<TAB>target file",
        files={"pairs.tsv": bytes(range(256)) * 40},
    ),
    Case(
        "data-dir-is-a-file",
        [*RUN, "lm-gru", *OUT],
        "ZOO_DATA_DIR={tmp}/datafile: not a directory",
        files={"datafile": "x"},
        env={"ZOO_DATA_DIR": "{tmp}/datafile"},
    ),
    Case(
        "pretrain-source-missing",
        [*RUN, "{recipe}", "--set", "pretrain.source={tmp}/absent.txt", *OUT],
        "absent.txt: file not found",
    ),
    # ---------------------------------------------------------------- run directories
    Case("out-is-a-file", [*RUN, "lm-gru", "--out", "{tmp}/f"], "is a file", files={"f": "x"}),
    Case("out-holds-a-run", [*TRAIN_TINY, "--out", "{run}"], "already holds a run"),
    Case(
        "resume-other-recipe",
        [*RESUME, "--set", "train.epochs=2"],
        "the recipe differs from the one this run started with",
    ),
    Case("resume-while-locked", RESUME, "another zoo process", damage=held_lock),
    Case(
        "resume-user-folder",
        [*TRAIN_TINY, "--out", "{tmp}/mine", "--resume"],
        "not empty and not a zoo run",
        files={"mine/notes.txt": "keep\n"},
    ),
    Case("evaluate-nothing", ["evaluate", "{tmp}/nothing"], "not a run directory"),
    Case(
        "evaluate-unfinished",
        ["evaluate", "{run}"],
        "no model.keras",
        damage=write("model.keras", None),
    ),
    Case(
        "run-recipe-not-yaml",
        ["evaluate", "{run}"],
        "not valid YAML",
        damage=write("recipe.yaml", "a: ["),
    ),
    Case(
        "run-recipe-invalid",
        ["evaluate", "{run}"],
        "model.layers: required",
        damage=write("recipe.yaml", "name: tiny\ntask: language_model\n"),
    ),
    Case("evaluate-beam-on-lm", ["evaluate", "{run}", "--beam", "2"], "does not decode"),
    Case(
        "evaluate-split-bogus",
        ["evaluate", "{run}", "--split", "dev"],
        "Invalid value for '--split'",
    ),
    Case("translate-lm", ["translate", "{run}", "go ."], "does not translate"),
    # ---------------------------------------------------------------- checkpoints
    Case(
        "state-not-json",  # issue 14, reproduction 4
        RESUME,
        "checkpoints/state.json: damaged checkpoint state, not JSON",
        damage=write("checkpoints/state.json", "{half"),
    ),
    Case(
        "state-a-list",
        RESUME,
        "damaged checkpoint state (no epochs_done count)",
        damage=write("checkpoints/state.json", "[1, 2]"),
    ),
    Case(
        "last-checkpoint-corrupt",
        RESUME,
        "last.keras: corrupt model file (not a .keras zip archive)",
        damage=write("checkpoints/last.keras", b"PK\x03\x04 half a file"),
    ),
    # ---------------------------------------------------------------- models and vocabularies
    Case(
        "model-not-a-zip",
        GEN,
        "model.keras: corrupt model file (not a .keras zip archive)",
        damage=write("model.keras", b"\x00" * 64),
    ),
    Case(
        "model-zip-of-junk",
        GEN,
        "model.keras: corrupt or unreadable model file",
        damage=zip_of_junk("model.keras"),
    ),
    Case("vocab-shorter", GEN, "tokens, but the model has", damage=shorter_vocab),
    Case("vocab-missing", GEN, "vocabulary file not found", damage=write("vocab.txt", None)),
    Case("vocab-duplicates", GEN, "duplicate tokens", damage=write("vocab.txt", "<unk>\na\na\n")),
    Case("vocab-without-unk", GEN, "no <unk> token", damage=write("vocab.txt", "a\nb\n")),
    # ---------------------------------------------------------------- CLI options
    Case("temperature-zero", [*GEN, "--temperature", "0"], "Invalid value for '--temperature'"),
    Case(
        "temperature-negative", [*GEN, "--temperature", "-1"], "Invalid value for '--temperature'"
    ),
    Case(
        "temperature-nan", [*GEN, "--temperature", "nan"], "--temperature: expected a finite number"
    ),
    Case(
        "temperature-inf", [*GEN, "--temperature", "inf"], "--temperature: expected a finite number"
    ),
    Case("prefix-empty", ["generate", "{run}", "--prefix", ""], "--prefix: nothing left of ''"),
    Case("prefix-no-letters", ["generate", "{run}", "--prefix", "42 !?"], "--prefix: nothing left"),
    Case("prefix-missing", ["generate", "{run}"], "Missing option '--prefix'"),
    Case("length-zero", [*GEN, "--length", "0"], "Invalid value for '--length'"),
    Case("length-too-long", [*GEN, "--length", "100000"], "1<=x<=10000"),
    Case("generate-seed-negative", [*GEN, "--seed", "-1"], "Invalid value for '--seed'"),
    Case("run-seed-negative", [*RUN, "lm-gru", "--seed", "-1"], "Invalid value for '--seed'"),
    Case(
        "run-seed-too-large", [*RUN, "lm-gru", "--seed", str(2**32)], "Invalid value for '--seed'"
    ),
    Case("beam-zero", ["translate", "{run}", "go .", "--beam", "0"], "Invalid value for '--beam'"),
    Case("beam-too-wide", ["translate", "{run}", "go .", "--beam", "101"], "1<=x<=100"),
    Case(
        "alpha-nan", ["translate", "{run}", "go .", "--alpha", "nan"], "--alpha: expected a finite"
    ),
    Case(
        "alpha-negative",
        ["translate", "{run}", "go .", "--alpha", "-1"],
        "Invalid value for '--alpha'",
    ),
    Case(
        "translate-blank-line",
        ["translate", "{run}"],
        "empty sentence (line 2 of the input)",
        stdin="go .\n\ni lost .\n",
    ),
    Case("translate-empty-argument", ["translate", "{run}", " "], "empty sentence (line 1"),
    Case("option-unknown", [*RUN, "lm-gru", "--epochs", "3"], "No such option '--epochs'"),
    Case("command-unknown", ["trian", "lm-gru"], "No such command 'trian'"),
    Case("argument-missing", RUN, "Missing argument 'RECIPE'"),
    Case("dataset-unknown", ["data", "show", "time_machin"], "time_machin"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_input_is_one_line_and_changes_nothing(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)


def test_the_suite_covers_at_least_a_hundred_bad_inputs():
    """Issue 14's 60 cases and issue 24's 40 more, every id once across the modules."""
    modules = sorted(Path(__file__).parent.glob("test_bad_inputs*.py"))
    ids = [case.id for module in modules for case in importlib.import_module(module.stem).CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids), len(ids)
