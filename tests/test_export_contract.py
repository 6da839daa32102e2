"""export.json as a versioned contract (issue 26): format 3 and its JSON Schema, the
shipped models' exports kept to it, the cleaning rules' Python and JavaScript forms equal
to zoo's cleaning, an export.json that breaks the schema refused in one line, and a
client written from export.json alone (tests/clients/translate_client.py) that translates
as ``zoo translate`` does. Every export a test makes is checked against the schema when
``write_manifest`` writes it."""

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import regex
from bad_inputs import Case, check_case
from jsonschema import Draft202012Validator

from zoo.export.manifest import (
    FORMAT_VERSION,
    SCHEMA,
    ExportError,
    file_records,
    read_manifest,
    write_manifest,
)
from zoo.text.formats import (
    JOIN_STEPS,
    WHITESPACE,
    LanguageModelText,
    TranslationText,
    cleaning_steps,
)

ROOT = Path(__file__).resolve().parents[1]
SAVED_MODELS = ROOT / "zoo" / "saved_models"
# every shipped export folder: a trained model's export/, and each export-only model
SHIPPED = sorted(SAVED_MODELS.glob("*/export")) + sorted(
    path.parent for path in SAVED_MODELS.glob("*/export.json")
)
TRANSLATOR = SAVED_MODELS / "seq2seq-attn-fra-eng-phone"  # its int8-embeddings file, beam 4
SMALL_EXPORT = ROOT / "zoo" / "saved_models" / "lm-gru-timemachine" / "export"
CLIENT = ROOT / "tests" / "clients" / "translate_client.py"

# Text that tells the dialects apart: letters of several scripts, a decomposed accent,
# numerals that Python's \w takes and \p{L} does not, no-break and other spaces, line
# ends, punctuation runs, a dotted capital I and a final sigma (case mappings).
SAMPLES = [
    "The Time Machine, by H. G. Wells [1898]",
    "x²y ½ Ⅻ café cafe\u0301 ΟΔΟΣ İstanbul 東京 _a1b ① 𝟙",
    "Va\u00a0! J'ai faim.\u202fOui?",
    "hi!!  ..go? ,x .",
    "¿Dónde está «el» gato?",
    '«Oui», dit-il…\u2003(sí)\t"ok"\u3000 \ufeffend ',
    "a\r\nb\rc\n\x1cd\x85e\u2028f",
    "",
    "   ",
]


def apply(steps, text, dialect):
    """export.json's replace steps as an app applies them: the Python form with ``re``,
    or the JavaScript form with ``regex`` (which reads ``\\p{L}`` and lookbehind as
    JavaScript's flag u does)."""
    for step in steps:
        if "replace" in step:
            pattern = step["replace"]
            if isinstance(pattern, dict):
                pattern = pattern[dialect]
            engine = re if dialect == "python" else regex
            text = engine.sub(pattern, step["with"], text)
        elif step.get("lowercase"):
            text = text.lower()
        elif step.get("trim"):
            text = text.strip(" ")
    return text


def cleanings():
    """(name, steps, zoo's own function) of every cleaning export.json can state."""
    found = [
        ("text-chapter", cleaning_steps("text", "chapter"), LanguageModelText().clean),
        ("sentences-chapter", cleaning_steps("sentences", "chapter"), TranslationText().clean),
    ]
    for preprocess in ("lower", "none"):
        text = LanguageModelText(preprocess=preprocess, token_level="word", line_ends="eos")
        sentences = TranslationText(preprocess=preprocess)
        found += [
            (f"text-{preprocess}", cleaning_steps("text", preprocess), text.clean),
            (f"sentences-{preprocess}", cleaning_steps("sentences", preprocess), sentences.clean),
        ]
    return found


# ---------------------------------------------------------------- the schema


def test_the_schema_is_draft_2020_12_and_pins_the_format():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["format"] == {"const": "zoo-export"}
    assert schema["properties"]["format_version"] == {"const": FORMAT_VERSION} == {"const": 3}


def test_each_task_adds_its_own_part_of_the_schema():
    from zoo import registry
    from zoo.export.manifest import export_schema

    whole = export_schema()
    Draft202012Validator.check_schema(whole)
    parts = {part["if"]["properties"]["task"]["const"]: part["then"] for part in whole["allOf"]}
    for entry in registry.tasks.entries():
        assert parts.get(entry.name) == (entry.obj.export_schema or None), entry.name
    assert "allOf" not in json.loads(SCHEMA.read_text(encoding="utf-8"))  # no task named there


@pytest.mark.parametrize(
    "folder",
    SHIPPED,
    ids=[folder.parent.name if folder.name == "export" else folder.name for folder in SHIPPED],
)
def test_a_shipped_export_keeps_the_contract_and_names_only_its_files(folder):
    manifest = read_manifest(folder)  # checked against the schema
    assert manifest["format_version"] == 3
    on_disk = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "export.json")
    assert [record["path"] for record in manifest["files"]] == on_disk
    assert file_records(folder) == manifest["files"]
    named = [entry["file"] for entry in manifest["tflite"]]
    named += [
        entry["file"] for entry in manifest.values() if isinstance(entry, dict) and "file" in entry
    ]
    assert set(named) <= set(on_disk) and "saved_model" not in manifest
    card = (folder / "card.md").read_text(encoding="utf-8") + (folder / "card.json").read_text()
    for absent in ("model.tflite", "model-float16.tflite", "model-int8.tflite", "saved_model/"):
        assert f"`{absent}`" not in card and f'"{absent}"' not in card, absent
    text = manifest["text"]
    assert text["unicode_normalization"] == "none"
    assert text["unicode_version"] == unicodedata.unidata_version
    if manifest["task"] == "translator":
        decoding, signatures = manifest["decoding"], manifest["signatures"]
        token = next(t for t in signatures["decode_step"]["inputs"] if t["name"] == "token")
        assert token["shape"] == [decoding["decode_step_rows"]] == [decoding["beam_width"]]


def test_a_language_models_decoding_defaults_are_zoo_generates():
    from zoo.cli.main import generate_command
    from zoo.export.language_model import GENERATE_LENGTH, GENERATE_TEMPERATURE

    defaults = {param.name: param.default for param in generate_command.params}
    assert (defaults["length"], defaults["temperature"]) == (GENERATE_LENGTH, GENERATE_TEMPERATURE)
    assert defaults["greedy"] is False
    for folder in SHIPPED:
        decoding = read_manifest(folder)["decoding"]
        if "length" in decoding:
            assert (decoding["length"], decoding["temperature"], decoding["greedy"]) == (
                GENERATE_LENGTH,
                GENERATE_TEMPERATURE,
                False,
            )


def test_write_manifest_refuses_a_document_that_breaks_the_contract(tmp_path):
    manifest = json.loads((SMALL_EXPORT / "export.json").read_text())
    for key in ("format", "format_version", "files", "tensor_binding"):
        del manifest[key]
    del manifest["vocabulary_format"]
    with pytest.raises(ExportError) as raised:
        write_manifest(tmp_path, manifest, [])
    assert str(raised.value) == f"{tmp_path}/export.json: vocabulary_format: missing"
    assert not (tmp_path / "export.json").exists()


# ---------------------------------------------------------------- the cleaning rules


@pytest.mark.parametrize("dialect", ["python", "javascript"])
@pytest.mark.parametrize(("name", "steps", "clean"), cleanings(), ids=[c[0] for c in cleanings()])
def test_each_cleaning_rule_in_either_dialect_is_zoos_cleaning(name, steps, clean, dialect):
    for sample in SAMPLES:
        assert apply(steps, sample, dialect) == clean(sample), (name, sample)


@pytest.mark.parametrize("dialect", ["python", "javascript"])
def test_the_join_steps_are_zoos_join(dialect):
    for preprocess in ("lower", "none"):
        text = TranslationText(preprocess=preprocess)
        for sample in SAMPLES:
            words = text.words(sample)
            assert apply(JOIN_STEPS, " ".join(words), dialect) == text.join(words), sample


def test_the_whitespace_class_is_pythons_whitespace():
    """text.whitespace is what str.split and str.strip take for whitespace."""
    pattern = re.compile(WHITESPACE)
    characters = [chr(code) for code in range(sys.maxunicode + 1)]
    assert [c for c in characters if pattern.fullmatch(c)] == [c for c in characters if c.isspace()]


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to run JavaScript")
def test_node_reads_the_javascript_forms_as_zoo_cleans():
    """The rules in JavaScript itself (flags gu), where node is installed."""
    script = """
const [cleanings, samples] = JSON.parse(require("fs").readFileSync(0, "utf8"));
const apply = (steps, text) => steps.reduce((text, step) =>
  "replace" in step
    ? text.replace(new RegExp(step.replace.javascript ?? step.replace, "gu"), step.with)
    : step.lowercase ? text.toLowerCase() : text.replace(/^ +| +$/gu, ""), text);
console.log(JSON.stringify(cleanings.map(steps => samples.map(text => apply(steps, text)))));
"""
    steps = [steps for _, steps, _ in cleanings()]
    result = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([steps, SAMPLES]),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [[clean(sample) for sample in SAMPLES] for _, _, clean in cleanings()]
    assert json.loads(result.stdout) == expected


# ---------------------------------------------------------------- refused in one line


def shipped_export_with(change):
    """Damage: a copy of a shipped export in the run, its export.json ``change``d."""

    def damage(run):
        folder = run / "shipped"
        shutil.copytree(SMALL_EXPORT, folder)
        manifest = json.loads((folder / "export.json").read_text())
        change(manifest)
        (folder / "export.json").write_text(json.dumps(manifest))

    return damage


GEN = ["generate", "{run}/shipped", "--prefix", "time"]
CASES = [
    Case(
        "contract-positional-binding",
        GEN,
        "shipped/export.json: tensor_binding.by: 'name' was expected",
        damage=shipped_export_with(lambda m: m["tensor_binding"].update(by="position")),
    ),
    Case(
        "contract-group-reference",
        GEN,
        "shipped/export.json: text.cleaning_steps[0]",
        damage=shipped_export_with(lambda m: m["text"]["cleaning_steps"][0].update({"with": "$1"})),
    ),
    Case(
        "contract-no-vocabulary-format",
        GEN,
        "shipped/export.json: vocabulary_format: missing",
        damage=shipped_export_with(lambda m: m.pop("vocabulary_format")),
    ),
    Case(
        "contract-normalized",
        GEN,
        "shipped/export.json: text.unicode_normalization: 'none' was expected",
        damage=shipped_export_with(lambda m: m["text"].update(unicode_normalization="NFC")),
    ),
    Case(
        "contract-unshipped-tflite",
        GEN,
        "shipped/export.json: tflite[1].file: model.tflite is not in the export's files",
        damage=shipped_export_with(
            lambda m: m["tflite"].append({**m["tflite"][0], "file": "model.tflite"})
        ),
    ),
    Case(
        "contract-zero-temperature",
        GEN,
        "shipped/export.json: decoding.temperature: 0 is less than or equal to the minimum of 0",
        damage=shipped_export_with(lambda m: m["decoding"].update(temperature=0)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_an_export_json_that_breaks_the_contract_is_one_line(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)


# ---------------------------------------------------------------- a client from export.json


def test_the_client_is_short_and_imports_neither_zoo_nor_tensorflow():
    source = CLIENT.read_text(encoding="utf-8")
    assert len(source.splitlines()) < 300
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"json", "re", "unicodedata", "numpy", "ai_edge_litert"}, imported


def fra_eng_test_sources(count: int) -> list[str]:
    """The first ``count`` distinct English sentences, as written, of fra_eng's test
    split (split as zoo.data.fra_eng does, without preparing the TFDS dataset)."""
    import zipfile

    from zoo.data.fra_eng import MEMBER, SOURCE_FILE, SPLIT_SEED
    from zoo.data.shipped_files import shipped_file
    from zoo.data.splits import hash_split
    from zoo.data.user_files import parse_pairs
    from zoo.text.cleaning import clean_translation

    with zipfile.ZipFile(shipped_file(SOURCE_FILE)) as archive:
        pairs, _ = parse_pairs(archive.read(MEMBER), source_name=MEMBER)
    sources = {}  # in line order, each once
    for pair in pairs:
        if hash_split(clean_translation(pair.source), seed=SPLIT_SEED) == "test":
            sources.setdefault(pair.source, None)
            if len(sources) == count:
                return list(sources)
    raise AssertionError(f"fewer than {count} test sources")


@pytest.fixture(scope="module")
def client_and_sources():
    specification = importlib.util.spec_from_file_location("translate_client", CLIENT)
    client = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(client)
    return client.Translator(str(TRANSLATOR)), fra_eng_test_sources(200)


@pytest.mark.slow
@pytest.mark.parametrize("beam_width", [1, 4])
def test_the_client_translates_as_zoo_translate_does(client_and_sources, beam_width):
    """200 test sources of the shipped translator: the client's translations are
    ``zoo translate EXPORT_DIR --beam K``'s (zoo's LiteRT path), every one."""
    from zoo.pipeline import translate_with_run

    client, sources = client_and_sources
    expected = translate_with_run(str(TRANSLATOR), sources, beam_width)
    found = [client.translate(source, beam_width) for source in sources]
    differences = [(s, f, e) for s, f, e in zip(sources, found, expected, strict=True) if f != e]
    assert not differences, f"{len(differences)} of {len(sources)} differ: {differences[:3]}"


WEB_SECTION = {
    "page": "index.html",
    "tflite": "model.tflite",
    "size": 10333644,
    "runtime": {"package": "@litertjs/core", "version": "2.5.3", "wasm": "litert/wasm/"},
    "model": {"name": "lm-lstm-timemachine", "metrics": {"test perplexity": 3.3585}},
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda web: web.pop("runtime"), "web.runtime: missing"),
        (lambda web: web["runtime"].update(version="latest"), "web.runtime.version"),
        (lambda web: web["model"]["metrics"].update(bleu="high"), "web.model.metrics.bleu"),
        (lambda web: web.update(page="../index.html"), "web.page"),
    ],
)
def test_the_web_section_is_held_by_the_schema(change, problem):
    from zoo.export.manifest import check_contract

    document = json.loads((SHIPPED[0] / "export.json").read_text(encoding="utf-8"))
    document["web"] = json.loads(json.dumps(WEB_SECTION))
    check_contract(document, "export.json")  # the section as zoo --format web writes it
    change(document["web"])
    with pytest.raises(ExportError, match=re.escape(problem)):
        check_contract(document, "export.json")
