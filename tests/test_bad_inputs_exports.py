"""Bad inputs of export folders (issue 24): a user's folder given as ``zoo export
--out`` (refused unless zoo wrote all of it), and export folders whose ``export.json`` or
files do not match (a TFLite file from another export, a truncated vocabulary, missing
keys, a manifest too large or too deep). Each is one line, exit 2, and changes nothing.
The machinery is in ``bad_inputs.py``; the run copied into each case's folder holds an
export made once per session (``run/export``, TFLite only, unmeasured).
"""

import json
import shutil

import pytest
from bad_inputs import Case, check_case, write

from zoo.export.manifest import sha256_of

EXPORT = ["export", "{run}", "--format", "tflite", "--no-measure"]
GEN = ["generate", "{run}/export", "--prefix", "time"]
LISTED = "is not listed in its export.json"


@pytest.fixture(scope="session")
def exported_run(trained_run, tmp_path_factory):
    """``trained_run`` with an export of its own in ``run/export``: (recipe, run folder)."""
    from zoo.pipeline import export_run

    recipe, run = trained_run
    copy = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(run, copy)
    export_run(str(copy), formats=("tflite",), quantizations=("dynamic",), measure=False)
    return recipe, copy


def edit_manifest(change):
    """Damage: ``change(manifest)`` applied to the export's export.json."""

    def damage(run):
        path = run / "export" / "export.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return damage


def as_version_1(manifest):
    """An export.json as zoo 0.1 wrote it: format version 1, no list of files."""
    manifest["format_version"] = 1
    del manifest["files"]


def both(*damages):
    def damage(run):
        for each in damages:
            each(run)

    return damage


def without_card_chart(run):
    """The export as zoo 0.1 left it: no card.png (a version 1 export never had one)."""
    (run / "export" / "card.png").unlink()


def swap_tflite(run):
    """model.tflite replaced by another export's TFLite file."""
    shutil.copy(run / "export" / "model-dynamic.tflite", run / "export" / "model.tflite")


def truncate_vocab(run):
    path = run / "export" / "vocab.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-2]))


def vocab_of_another_export(run):
    """vocab.txt with one more token, export.json saying so (its size and sha256)."""
    path = run / "export" / "vocab.txt"
    path.write_text(path.read_text() + "zorglub\n")
    manifest_path = run / "export" / "export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["vocab"]["size"] += 1
    for record in manifest["files"]:
        if record["path"] == "vocab.txt":
            record.update(size=path.stat().st_size, sha256=sha256_of(path))
    manifest_path.write_text(json.dumps(manifest))


def nested(depth: int) -> str:
    return '{"format": "zoo-export", "x": ' + "[" * depth + "]" * depth + "}"


CASES = [
    # ---------------------------------------------------------------- zoo export --out
    Case(
        "export-out-user-file-beside-export-json",
        [*EXPORT, "--out", "{tmp}/e"],
        "{tmp}/e: exists and is not a zoo export (export.json: not a zoo export manifest",
        files={"e/export.json": "{}\n", "e/thesis.tex": "draft\n"},
    ),
    Case(
        "export-out-user-saved-model",
        [*EXPORT, "--out", "{tmp}/e"],
        "{tmp}/e: exists and is not a zoo export (no export.json)",
        files={"e/saved_model/saved_model.pb": "mine\n"},
    ),
    Case(
        "export-out-unlisted-file",
        [*EXPORT, "--out", "{run}/export"],
        f"(thesis.tex {LISTED}); choose another --out",
        damage=write("export/thesis.tex", "draft\n"),
    ),
    Case(
        "export-out-changed-file",
        [*EXPORT, "--out", "{run}/export"],
        "(card.md differs from the file zoo wrote)",
        damage=write("export/card.md", "my own notes\n"),
    ),
    Case(
        "export-out-version-1-with-user-file",
        [*EXPORT, "--out", "{run}/export"],
        "(notes.txt is not a file that zoo exports write)",
        damage=both(
            edit_manifest(as_version_1), without_card_chart, write("export/notes.txt", "mine\n")
        ),
    ),
    Case(
        "export-out-version-1-changed-tflite",
        [*EXPORT, "--out", "{run}/export"],
        "(model.tflite differs from the file zoo wrote)",
        damage=both(edit_manifest(as_version_1), without_card_chart, swap_tflite),
    ),
    Case(
        "export-out-a-file",
        [*EXPORT, "--out", "{tmp}/e"],
        "Directory '{tmp}/e' is a file",
        files={"e": "mine\n"},
    ),
    # ---------------------------------------------------------------- running an export
    Case("export-swapped-tflite", GEN, "model.tflite: sha256", damage=swap_tflite),
    Case(
        "export-truncated-vocab",
        GEN,
        "vocab.txt: 56 bytes, but export.json lists 60",
        damage=truncate_vocab,
    ),
    Case(
        "export-version-1-truncated-vocab",
        GEN,
        "vocab.txt: 26 tokens, but export.json says vocab.size 28",
        damage=both(edit_manifest(as_version_1), truncate_vocab),
    ),
    Case(
        "export-vocab-and-manifest-of-another-export",
        GEN,
        "vocab.txt: 29 tokens, but model.tflite scores 28: they are not from the same export",
        damage=vocab_of_another_export,
    ),
    Case(
        "export-json-missing-vocab-size",
        GEN,
        "export.json: vocab.size: missing",
        damage=edit_manifest(lambda manifest: manifest["vocab"].pop("size")),
    ),
    Case(
        "export-json-missing-sha256",
        GEN,
        "export.json: tflite[0].sha256: missing",
        damage=edit_manifest(lambda manifest: manifest["tflite"][0].pop("sha256")),
    ),
    Case(
        "export-json-state-shape-a-string",
        GEN,
        "export.json: signatures.step.states[0].shape: expected a list, got str",
        damage=edit_manifest(
            lambda manifest: manifest["signatures"]["step"]["states"][0].update(shape="1x8")
        ),
    ),
    Case(
        "export-json-state-shape-bomb",
        GEN,
        "signatures.step.states[0]: float32 [100000, 100000], but model.tflite has float32",
        damage=edit_manifest(
            lambda manifest: manifest["signatures"]["step"]["states"][0].update(
                shape=[100_000, 100_000]
            )
        ),
    ),
    Case(
        "export-json-file-outside",
        GEN,
        "tflite[0].file: '../model.keras' is not a path inside the export",
        damage=edit_manifest(lambda manifest: manifest["tflite"][0].update(file="../model.keras")),
    ),
    Case(
        "export-json-too-large",
        GEN,
        "a zoo export manifest is at most 1,048,576",
        damage=write("export/export.json", '{"x": "' + "x" * (1 << 20) + '"}'),
    ),
    Case(
        "export-json-too-deep",
        GEN,
        "export.json: nested more than 64 levels deep",
        damage=write("export/export.json", nested(100)),
    ),
    Case(
        "export-json-recursion-bomb",
        GEN,
        "export.json: nested more than 64 levels deep",
        damage=write("export/export.json", nested(100_000)),
    ),
    Case(
        "export-json-format-version-4",
        GEN,
        "export.json: format version 4; this zoo reads versions 1, 2, 3",
        damage=edit_manifest(lambda manifest: manifest.update(format_version=4)),
    ),
    Case(
        "export-json-not-json",
        GEN,
        "export.json: not valid JSON",
        damage=write("export/export.json", '{"format": "zoo-export",'),
    ),
    Case(
        "export-json-a-list",
        GEN,
        "export.json: not a zoo export manifest",
        damage=write("export/export.json", "[1, 2]"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_export_is_one_line_and_changes_nothing(
    case, exported_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, exported_run, small_corpus, tmp_path, monkeypatch)
