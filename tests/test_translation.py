"""The translator end to end on a small TSV corpus: training, BLEU fields, decoding and
the bad inputs of `zoo translate`."""

import json
import math
import shutil

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.pipeline import evaluate_run, run_recipe, translate_with_run
from zoo.recipe import RecipeError

PAIRS = [
    ("go .", "va !"),
    ("i lost .", "j'ai perdu ."),
    ("he's calm .", "il est calme ."),
    ("i'm home .", "je suis chez moi ."),
    ("we won .", "nous avons gagné ."),
    ("i'm calm .", "je suis calme ."),
    ("he's home .", "il est chez lui ."),
    ("we lost .", "nous avons perdu ."),
    ("i won .", "j'ai gagné ."),
    ("go home .", "rentre chez toi !"),
]
VALIDATION_PAIR = ("they ran .", "ils ont couru .")  # the hash split puts it in validation


def write_tiny_translator(folder, decoder=None, model=None, train=None, pairs=PAIRS, export=None):
    """A tiny translator recipe on the chapter-like pairs → (recipe path, corpus path);
    the keyword arguments add to its decoder, model and train sections, ``export`` is its
    export section."""
    corpus = folder / "pairs.tsv"
    # Every pair many times, so the tiny model can learn them; the split keeps copies of one
    # English sentence on one side, so the test split holds unseen sentences.
    corpus.write_text(
        "".join(f"{en}\t{fr}\n" for _ in range(30) for en, fr in pairs), encoding="utf-8"
    )
    recipe = folder / "tiny.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-translator",
                "task": "translator",
                # pairs written as fra-eng's are, so cleaned its way (a user's file
                # gets data.preprocess lower by default)
                "data": {
                    "source": str(corpus),
                    "preprocess": "chapter",
                    "num_steps": 6,
                    "batch_size": 16,
                    "min_freq": 1,
                },
                "model": {
                    "embedding_dim": 16,
                    "encoder": {"name": "bidirectional", "layer": "gru", "units": 16},
                    "decoder": {
                        "cell": "gru_cell",
                        "units": 24,
                        "num_layers": 2,
                        **(decoder or {}),
                    },
                    "attention": {"name": "additive_attention", "units": 16},
                    **(model or {}),
                },
                "train": {"epochs": 8, "learning_rate": 0.02, **(train or {})},
                "decode": {"beam_width": 3, "max_length": 8},
                **({} if export is None else {"export": export}),
            }
        )
    )
    return recipe, corpus


def learned_fraction(out, corpus) -> float:
    """The share of distinct training sources whose greedy translation is their target."""
    from zoo.data.translation import load_translation_splits

    train = load_translation_splits(str(corpus))["train"]
    sources = sorted(set(train.source))
    expected = [train.target[train.source.index(source)] for source in sources]
    translations = translate_with_run(str(out), sources, beam_width=1)
    return sum(got == want for got, want in zip(translations, expected, strict=True)) / len(sources)


def test_evaluation_writes_bleu_fields(translator_run):
    out, metrics, _ = translator_run
    stored = json.loads((out / "metrics.json").read_text())
    for key in ("bleu", "bleu_greedy", "sentences_per_sec"):
        assert math.isfinite(stored[key]) and stored[key] >= 0
    assert stored["bleu_signature"].startswith("nrefs:1")
    assert stored["bleu_multi_reference"] >= 0
    assert stored["test_sources"] <= stored["test_sentences"]
    assert stored["test_sources_cut"] == 0  # no fixture sentence has more than 5 words
    rows = (out / "translations.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "source\tbeam\tgreedy\treferences"
    assert len(rows) == 1 + stored["test_sources"]
    assert all(len(row.split("\t")) >= 4 for row in rows[1:])
    # the chapter's four sentences are fra-eng's: a user's corpus is not measured on them
    assert "chapter_examples" not in stored


def test_the_training_pairs_are_learned(translator_run):
    out, _, corpus = translator_run
    assert learned_fraction(out, corpus) >= 0.8


@pytest.mark.slow
def test_deep_output_averaging_and_a_sampled_softmax_train_together(tmp_path):
    """The options the translator recipes combine: the decoder's deep output, a sampled
    softmax in training, a cosine schedule and weight averaging."""
    recipe, corpus = write_tiny_translator(
        tmp_path,
        decoder={"deep_output": True},
        model={"sampled_softmax": 8},
        train={"lr_schedule": "cosine", "weight_averaging": 0.9, "epochs": 16},
    )
    out = tmp_path / "run"
    metrics = run_recipe(str(recipe), out=str(out), seed=0)
    assert math.isfinite(metrics["bleu"]) and metrics["epochs"] == 16
    assert learned_fraction(out, corpus) >= 0.8


@pytest.mark.slow
def test_beam_width_one_is_greedy_and_batching_changes_nothing(translator_run):
    out, _, _ = translator_run
    sentences = [en for en, _ in PAIRS]
    greedy = translate_with_run(str(out), sentences, beam_width=1)
    assert [translate_with_run(str(out), [s], beam_width=1)[0] for s in sentences] == greedy
    beams = translate_with_run(str(out), sentences, beam_width=3)
    assert [translate_with_run(str(out), [s], beam_width=3)[0] for s in sentences] == beams


def test_padding_does_not_change_the_encoding(translator_run):
    import keras

    out, _, _ = translator_run
    model = keras.saving.load_model(out / "model.keras")
    source = np.array([[5, 6, 2, 0, 0, 0]], dtype="int32")
    noisy = source.copy()
    noisy[0, 3:] = 7  # junk where the mask says padding
    decoder_input = np.array([[1, 5, 6, 0, 0]], dtype="int32")
    clean = model((source, np.array([3]), decoder_input))
    assert np.allclose(clean, model((noisy, np.array([3]), decoder_input)), atol=1e-6)


@pytest.mark.slow
def test_translate_cli_bad_inputs(translator_run):
    out, _, _ = translator_run
    runner = CliRunner()
    result = runner.invoke(cli, ["translate", str(out), "i lost ."])
    assert result.exit_code == 0 and result.stdout.strip()
    result = runner.invoke(cli, ["translate", str(out)], input="i lost .\nwe won .\n")
    assert result.exit_code == 0 and len(result.stdout.strip().splitlines()) == 2
    result = runner.invoke(cli, ["translate", str(out), "   "])
    assert result.exit_code == 2 and "empty sentence" in result.stderr
    result = runner.invoke(cli, ["translate", str(out)], input="i lost .\n\nwe won .\n")
    assert result.exit_code == 2 and result.stdout == ""  # checked before any translation
    assert result.stderr == "zoo: error: empty sentence (line 2 of the input)\n"
    result = runner.invoke(cli, ["translate", str(out), "zorglub blorp ."])
    assert result.exit_code == 0  # unknown words become <unk>
    long_sentence = " ".join(["go"] * 20)
    result = runner.invoke(cli, ["translate", str(out), long_sentence])
    assert result.exit_code == 0 and "is cut to the model's 5" in result.stderr
    result = runner.invoke(cli, ["translate", str(out.parent / "missing"), "go ."])
    assert result.exit_code == 2 and "not a run directory" in result.stderr


@pytest.mark.parametrize("allow_unk", [False, True])
def test_unk_is_never_chosen_unless_the_recipe_allows_it(translator_run, allow_unk):
    from zoo.data import Vocab
    from zoo.tasks import get_task
    from zoo.text.vocab import UNK
    from zoo.training.run_directory import RunDirectory

    out, _, _ = translator_run
    run = RunDirectory(str(out))
    recipe = run.read_recipe()
    recipe = {**recipe, "decode": {**recipe["decode"], "allow_unk": allow_unk}}
    vocabs = [Vocab.load(out / name) for name in ("src_vocab.txt", "tgt_vocab.txt")]
    model = run.load_model(run.model_path)
    translator = get_task("translator").translator(model, *vocabs, recipe)
    state = translator.backend.encode(*translator.source_ids(["i won ."]))
    bos = np.full(1, vocabs[1]["<bos>"], "int32")
    log_probs, _ = translator.decode_step(bos, state)
    log_probs = np.asarray(log_probs)
    unk_log_prob = float(log_probs[0, vocabs[1][UNK]])
    assert (unk_log_prob == -math.inf) is not allow_unk
    assert np.isfinite(np.delete(log_probs[0], vocabs[1][UNK])).all()


@pytest.mark.slow
def test_evaluate_on_the_validation_split_with_other_decoding(translator_run, tmp_path):
    """Decoding settings are chosen on validation, never on test: `zoo evaluate --split
    validation --beam K --alpha A` scores that split with them and leaves the test
    results of the run alone; a split that does not apply, or holds nothing, exits 2
    with one line."""
    runner = CliRunner()
    fixture_run = translator_run[0]  # its hash split leaves validation empty
    result = runner.invoke(cli, ["evaluate", str(fixture_run), "--split", "validation"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "zoo: error: the validation split holds no sentence pairs to evaluate on"
    )
    result = runner.invoke(cli, ["evaluate", str(fixture_run), "--split", "train"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "zoo: error: --split: a 'translator' run is evaluated on one split, "
        "validation or test, got train"
    )

    recipe, _ = write_tiny_translator(
        tmp_path, train={"epochs": 2}, pairs=[*PAIRS, VALIDATION_PAIR]
    )
    out = tmp_path / "run"
    run_recipe(str(recipe), out=str(out), seed=0)
    test_tsv = (out / "translations.tsv").read_text(encoding="utf-8")
    metrics_before = (out / "metrics.json").read_text()
    args = ["evaluate", str(out), "--split", "validation", "--beam", "2", "--alpha", "1.5"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "validation"
    assert (metrics["beam_width"], metrics["length_penalty_alpha"]) == (2, 1.5)
    assert metrics["validation_sentences"] == 30 and metrics["validation_sources"] == 1
    assert "test_sentences" not in metrics
    assert math.isfinite(metrics["bleu"]) and metrics["bleu_signature"].startswith("nrefs:1")
    derived = out / "translations-validation-beam2-alpha1.5.tsv"  # named after its settings
    rows = derived.read_text(encoding="utf-8").splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == [VALIDATION_PAIR[0]]
    assert json.loads((out / "metrics-validation-beam2-alpha1.5.json").read_text()) == metrics
    assert (out / "translations.tsv").read_text(encoding="utf-8") == test_tsv
    assert (out / "metrics.json").read_text() == metrics_before
    # the test split with other decoding settings (issue 14): never over the run's own files
    result = runner.invoke(cli, ["evaluate", str(out), "--beam", "1", "--alpha", "0"])
    assert result.exit_code == 0, result.output
    assert (out / "translations-test-beam1-alpha0.tsv").is_file()
    assert (out / "metrics-test-beam1-alpha0.json").is_file()
    assert (out / "translations.tsv").read_text(encoding="utf-8") == test_tsv
    assert (out / "metrics.json").read_text() == metrics_before

    # a run made before `evaluate.split` existed: its recipe.yaml lacks the key
    stored = yaml.safe_load((out / "recipe.yaml").read_text(encoding="utf-8"))
    del stored["evaluate"]["split"]
    (out / "recipe.yaml").write_text(yaml.safe_dump(stored), encoding="utf-8")
    result = runner.invoke(cli, ["evaluate", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["split"] == "test"


def test_the_chapter_examples_are_scored_against_every_accepted_translation(monkeypatch):
    from zoo.tasks import translation

    accepted = {english: [french] for english, french in translation.CHAPTER_EXAMPLES.items()}
    accepted["i'm home ."].append("je suis à la maison .")
    monkeypatch.setattr(translation, "chapter_references", lambda source: accepted)
    answers = {
        "go .": "va !",
        "i lost .": "j'ai gagné .",
        "he's calm .": "il est calme .",
        "i'm home .": "je suis à la maison .",
    }
    examples = translation.chapter_examples(lambda sentences: [answers[sentences[0]]], "fra_eng")
    assert [example["exact"] for example in examples.values()] == [True, False, True, True]
    assert examples["i'm home ."]["bleu"] == 1.0 and examples["i lost ."]["bleu"] < 1.0
    assert examples["i'm home ."]["expected"] == "je suis chez moi ."


def test_a_run_warns_before_training_about_what_would_cost_an_hour(small_corpus, tmp_path):
    from zoo.data import language_model_data
    from zoo.tasks import get_task

    recipe = {
        "data": {"batch_size": 64, "num_steps": 64, "min_freq": 0},
        "model": {"embedding_dim": 0},
    }
    data = language_model_data(str(small_corpus), token_level="word", num_steps=64, batch_size=64)
    warnings = get_task("language_model").warnings(recipe, data)
    assert any("one-hot inputs" in warning and "embedding_dim" in warning for warning in warnings)
    assert any("validation split has" in warning for warning in warnings)
    recipe["model"]["embedding_dim"] = 32
    recipe["data"]["batch_size"] = 1
    assert get_task("language_model").warnings(recipe, data) == []


@pytest.mark.slow
def test_a_wide_beam_option_is_checked_against_the_recipes_max_length(translator_run, tmp_path):
    """--beam replaces the recipe's width after the recipe was checked: its product with
    decode.max_length is checked again, before any decoding."""
    out, _, _ = translator_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    recipe = yaml.safe_load((copy / "recipe.yaml").read_text(encoding="utf-8"))
    recipe["decode"]["max_length"] = 5000
    (copy / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert translate_with_run(str(copy), ["go ."], beam_width=20)  # 100,000 tokens: in bounds
    with pytest.raises(RecipeError, match=r"decode.beam_width: 21 × decode.max_length 5,000"):
        translate_with_run(str(copy), ["go ."], beam_width=21)
    with pytest.raises(RecipeError, match=r"decode.beam_width: 21 × decode.max_length 5,000"):
        evaluate_run(str(copy), beam_width=21)
