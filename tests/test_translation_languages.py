"""A translator on a language pair of the user's, from three TSV files: punctuation of
other languages split off and joined back (``data.preprocess: lower``), subwords
(``data.tokenizer: subword``), sacrebleu on the written-out translations, and the same
translations from the run, the TFLite export (no TensorFlow) and the SavedModel."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from test_export import no_tensorflow, run_without_zoo

from zoo.cli.main import cli
from zoo.pipeline import run_recipe, translate_with_run

PAIRS = [
    ("Where is the cat?", "¿Dónde está el gato?"),
    ("Hello!", "¡Hola!"),
    ("Who are you?", "¿Quién eres?"),
    ("I am hungry.", "Tengo hambre."),
    ("Come here!", "¡Ven aquí!"),
    ("The cat is black.", "El gato es negro."),
    ("Where are you?", "¿Dónde estás?"),
    ("I am here.", "Estoy aquí."),
]
HELD_OUT = [("Who is the cat?", "¿Quién es el gato?"), ("Hello, cat!", "¡Hola, gato!")]


def write_spanish(folder, tokenizer):
    """Three TSV files and a tiny recipe reading them → the recipe's path."""
    files = {}
    for split, pairs, copies in (
        ("train", PAIRS, 40),
        ("validation", PAIRS[:4], 1),
        ("test", PAIRS + HELD_OUT, 1),
    ):
        files[split] = str(folder / f"{split}.tsv")
        (folder / f"{split}.tsv").write_text(
            "".join(f"{en}\t{es}\n" for _ in range(copies) for en, es in pairs), encoding="utf-8"
        )
    data = {
        "source": files,
        "preprocess": "lower",
        "num_steps": 24,
        "batch_size": 16,
        "min_freq": 1,
        "tokenizer": tokenizer,
    }
    if tokenizer == "subword":
        data["subword_vocab_size"] = 120  # the characters, alone and continuing, and more
    recipe = folder / "es.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-en-es",
                "task": "translator",
                "data": data,
                "model": {
                    "embedding_dim": 24,
                    "encoder": {"name": "deep_rnn", "layer": "gru", "units": 32},
                    "decoder": {"cell": "gru_cell", "units": 32, "num_layers": 1},
                    "attention": {"name": "additive_attention", "units": 16},
                },
                "train": {"epochs": 12, "learning_rate": 0.02},
                "decode": {"beam_width": 2, "max_length": 24},
                "export": {"formats": ["saved_model", "tflite"], "quantize": []},
            }
        )
    )
    return recipe


@pytest.fixture(scope="module", params=[None, "subword"])
def spanish_run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"es-{request.param}")
    recipe = write_spanish(folder, request.param)
    run = folder / "run"
    metrics = run_recipe(str(recipe), out=str(run), seed=0)
    return request.param, run, metrics


@pytest.mark.slow
def test_it_trains_and_scores_the_written_translations(spanish_run):
    tokenizer, run, metrics = spanish_run
    assert "tok:intl" in metrics["bleu_signature"] and "case:lc" in metrics["bleu_signature"]
    assert "chapter_examples" not in metrics  # fra-eng's sentences are not this corpus's
    assert metrics["bleu"] > 50  # the training sentences are most of the test split
    rows = (run / "translations.tsv").read_text(encoding="utf-8").splitlines()[1:]
    translations = {row.split("\t")[0]: row.split("\t")[1] for row in rows}
    assert translations["Where is the cat?"] == "¿dónde está el gato?"
    assert translations["Hello!"] == "¡hola!"
    if tokenizer == "subword":  # a word never seen in training is spelled, not <unk>
        from zoo.text.formats import TranslationText
        from zoo.text.vocab import Vocab

        vocab = Vocab.load(run / "src_vocab.txt")
        pieces = TranslationText.from_spec({"tokenizer": "subword"}, vocab).tokens("Cats!")
        assert len(pieces) > 2 and "<unk>" not in pieces
        assert all(piece in vocab.token_to_idx for piece in pieces)


@pytest.mark.slow
def test_the_cli_export_and_savedmodel_translate_alike(spanish_run):
    tokenizer, run, _ = spanish_run
    sentences = ["Where is the cat?", "Hello!", "Come here!"]
    from_run = translate_with_run(str(run), sentences)
    assert from_run[0] == "¿dónde está el gato?"
    result = CliRunner().invoke(cli, ["translate", str(run)], input="\n".join(sentences) + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == from_run
    export = run / "export"
    manifest = json.loads((export / "export.json").read_text(encoding="utf-8"))
    assert manifest["text"]["preprocess"] == "lower"
    assert manifest["text"]["tokenizer"] == tokenizer
    code = f"""
from zoo.export.litert import load_export
translator = load_export({str(export)!r})
print("\\n".join(translator.translate({sentences!r})))
"""
    assert no_tensorflow(code).splitlines() == from_run
    if tokenizer == "subword":
        assert manifest["text"]["subword"]["suffix_prefix"] == "##"
        return  # the SavedModel has the token signatures only: subwords are the app's
    code = f"""
import tensorflow as tf
loaded = tf.saved_model.load({str(export / "saved_model")!r})
result = loaded.signatures["translate"](sentences=tf.constant({sentences!r}))
print("\\n".join(text.decode() for text in result["translations"].numpy()))
"""
    assert run_without_zoo(code).splitlines() == from_run


@pytest.mark.parametrize(
    "text",
    ["¿Dónde está?", "«Oui», dit-il…", "¡Hola!  (sí)", "a;b:c", "J’ai \u00a0vu “ça”.", "  "],
)
@pytest.mark.parametrize("preprocess", ["lower", "none"])
def test_the_graph_cleaning_and_joining_are_pythons(text, preprocess):
    import tensorflow as tf

    from zoo.export.text_signatures import clean_sentences, join_sentences
    from zoo.text.formats import TranslationText

    form = TranslationText(preprocess=preprocess)
    cleaned = clean_sentences(tf.constant(text), form).numpy().decode()
    assert cleaned == form.clean(text)
    joined = join_sentences(tf.constant(cleaned), form).numpy().decode()
    assert joined == form.join(cleaned.split())


def test_export_json_steps_reproduce_the_python_cleaning():
    """The steps an app applies (JavaScript syntax) give Python's cleaning when read by
    Python's re, which shares the syntax they use."""
    import re

    from zoo.text.formats import TranslationText, cleaning_steps

    for text in ["¿Dónde está?", "«Oui», dit-il…", "¡Hola!  (sí)", "J’ai \u00a0vu “ça”."]:
        for preprocess in ("lower", "none"):
            value = text
            for step in cleaning_steps("sentences", preprocess):
                if "replace" in step:
                    value = re.sub(step["replace"], step["with"].replace("$1", r"\1"), value)
                elif step.get("lowercase"):
                    value = value.lower()
                elif step.get("trim"):
                    value = value.strip()
            assert value == TranslationText(preprocess=preprocess).clean(text)
