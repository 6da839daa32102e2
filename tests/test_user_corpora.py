"""Users' own corpora: the text as written (``data.preprocess``), line ends as ``<eos>``,
three files for train / validation / test, and ``zoo data show`` on them."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.data import DataError
from zoo.data.language_modeling import language_model_data, load_corpus_splits
from zoo.data.splits import contiguous_split
from zoo.pipeline import run_recipe
from zoo.recipe import RecipeError, load_recipe
from zoo.text.formats import LanguageModelText, TranslationText
from zoo.text.vocab import EOS, UNK

WORDS = "the cat sat on a mat . dog ran far , N <unk> It was Fine".split()


def write_lines(path, count, seed):
    """``count`` lines of 3-12 words from ``WORDS``; returns (words, lines)."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(line.split()) for line in lines), len(lines)


@pytest.fixture
def three_files(tmp_path):
    counts = {}
    paths = {}
    for seed, (split, lines) in enumerate((("train", 1500), ("validation", 150), ("test", 120))):
        paths[split] = tmp_path / f"{split}.txt"
        counts[split] = write_lines(paths[split], lines, seed)
    return paths, counts


def word_data(paths):
    """Word-level data of the three files, as written, with <eos> line ends."""
    return language_model_data(
        {split: str(path) for split, path in paths.items()},
        token_level="word",
        num_steps=8,
        batch_size=4,
        preprocess="none",
        line_ends="eos",
    )


# ------------------------------------------------------------------------ text formats


def test_preprocess_none_keeps_case_punctuation_and_lines():
    text = LanguageModelText(preprocess="none", token_level="char", line_ends="eos")
    assert text.tokens("Hi, Bob!\r\nNo.") == [*"Hi, Bob!", EOS, *"No.", EOS]
    assert text.tokens("Hi\nNo", end_last_line=False) == [*"Hi", EOS, *"No"]
    assert text.join(text.tokens("Hi, Bob!\nNo.\n")) == "Hi, Bob!\nNo.\n"
    spaced = LanguageModelText(preprocess="lower", token_level="char")
    assert spaced.tokens("Hi\nNo") == list("hi no")
    chapter = LanguageModelText()
    assert chapter.tokens("Hi, Bob!\nNo.") == list("hi bob no ")


def test_word_level_line_ends_and_reserved_strings_in_the_text():
    text = LanguageModelText(preprocess="none", token_level="word", line_ends="eos")
    tokens = text.tokens("a <unk> N\n\nb\n")
    assert tokens == ["a", UNK, "N", EOS, EOS, "b", EOS]  # a blank line is one <eos>
    assert text.join(["x", EOS, "y", "z"]) == "x\ny z"
    assert LanguageModelText(preprocess="none", token_level="word").tokens("a b\nc") == [
        "a",
        "b",
        "c",
    ]
    with pytest.raises(DataError, match="line_ends"):
        LanguageModelText(preprocess="chapter", line_ends="eos")


def test_the_literal_unk_of_a_corpus_is_the_unknown_token(three_files):
    paths, _ = three_files
    data = word_data(paths)
    assert data.vocab[UNK] == data.vocab.unk == 0 and data.vocab[EOS] == 1
    assert data.vocab.idx_to_token.count(UNK) == 1
    assert "N" in data.vocab.token_to_idx and "n" not in data.vocab.token_to_idx


def test_a_single_file_is_cut_at_line_ends(tmp_path):
    path = tmp_path / "book.txt"
    write_lines(path, 400, seed=3)
    splits = load_corpus_splits(str(path), LanguageModelText(preprocess="none", token_level="word"))
    assert "".join(splits.values()) == path.read_text()
    assert all(part.endswith("\n") for part in splits.values())
    assert contiguous_split("ab\ncd\nef\n" * 20, at_lines=True)["test"].startswith("ab")


def test_translation_punctuation_of_other_languages_is_split_and_joined_back():
    text = TranslationText(preprocess="lower")
    assert text.words("¿Dónde está?  ¡Hola! «Oui» “quoted”; a: b… (c)") == [
        *["¿", "dónde", "está", "?", "¡", "hola", "!", "«", "oui", "»"],
        *["“", "quoted", "”", ";", "a", ":", "b", "…", "(", "c", ")"],
    ]
    assert text.words("J'ai peut-être vu l’homme.") == ["j'ai", "peut-être", "vu", "l’homme", "."]
    assert text.join(["¿", "dónde", "está", "?"]) == "¿dónde está?"
    assert TranslationText(preprocess="none").words("¿Qué?") == ["¿", "Qué", "?"]
    # the chapter's cleaning is unchanged: the shipped models were trained with it
    assert TranslationText().words("¿Dónde está?") == ["¿dónde", "está", "?"]


# ------------------------------------------------------------------- recipes and runs


def test_recipes_take_three_files_and_refuse_other_mappings(three_files):
    paths, _ = three_files
    sets = [f"data.source.{split}={path}" for split, path in paths.items()]
    recipe = load_recipe("lm-lstm", sets)
    assert recipe["data"]["source"] == {k: str(v) for k, v in paths.items()}
    with pytest.raises(RecipeError, match="data.source"):
        load_recipe("lm-lstm", [f"data.source.train={paths['train']}"])
    with pytest.raises(RecipeError, match="data.line_ends: eos"):
        load_recipe("lm-lstm", ["data.line_ends=eos"])


# A real training each (seconds): the word-level recipes' own three-file run in
# test_word_language_models scores every test token by default.
@pytest.mark.slow
def test_a_word_model_on_three_files_scores_every_test_token(tmp_path, three_files):
    paths, counts = three_files
    overrides = [
        *(f"data.source.{split}={path}" for split, path in paths.items()),
        "data.token_level=word",
        "data.preprocess=none",
        "data.line_ends=eos",
        "data.batch_size=8",
        "data.num_steps=16",
        "model.embedding_dim=16",
        "model.layers[0].units=32",
        "train.epochs=1",
        "export.formats=[]",
    ]
    metrics = run_recipe("lm-lstm", overrides, out=str(tmp_path / "run"))
    words, lines = counts["test"]
    assert metrics["test_tokens"] == words + lines  # every word and every line's <eos>
    assert metrics["validation_tokens"] == sum(counts["validation"])
    assert 1.0 < metrics["perplexity"] < len(WORDS) + 2
    vocab = (tmp_path / "run" / "vocab.txt").read_text().split("\n")
    assert vocab[:2] == [UNK, EOS]


@pytest.mark.slow  # six epochs; the text as written is checked on its own above
def test_a_character_model_of_text_as_written_generates_capitals_and_punctuation(tmp_path):
    path = tmp_path / "dialogue.txt"
    path.write_text("Hello, Ann! Yes, Bob.\n" * 400, encoding="utf-8")
    overrides = [
        f"data.source={path}",
        "data.preprocess=none",
        "data.batch_size=16",
        "data.num_steps=24",
        "model.embedding_dim=16",
        "model.layers[0].units=64",
        "model.layers[0].dropout=0",
        "model.layers[0].recurrent_dropout=0",
        "model.dropout=0",
        "train.epochs=6",
        "train.learning_rate=0.01",
        "export.formats=[]",
    ]
    run_recipe("lm-lstm", overrides, out=str(tmp_path / "run"))
    result = CliRunner().invoke(
        cli,
        ["generate", str(tmp_path / "run"), "--prefix", "Hello, ", "--length", "30", "--greedy"],
    )
    assert result.exit_code == 0, result.output
    generated = result.output.strip()
    assert generated.startswith("Hello, ")
    continuation = generated[len("Hello, ") :]
    assert any(c.isupper() for c in continuation) and any(c in ",.!" for c in continuation)


def test_data_show_describes_three_files_per_split(three_files):
    paths, counts = three_files
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "show",
            *(str(paths[split]) for split in ("train", "validation", "test")),
            "--set",
            "data.token_level=word",
            "--set",
            "data.preprocess=none",
            "--set",
            "data.line_ends=eos",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    description = json.loads(result.output)
    for split, (words, lines) in counts.items():
        assert description["splits"][split]["tokens"] == words + lines
        assert description["splits"][split]["eos"] == lines
        assert 0 < description["splits"][split]["unknown_rate"] < 0.2  # the literal <unk>
    assert description["vocab_size"] == len(set(WORDS)) + 1  # and <eos>


def test_data_show_reports_malformed_lines_of_a_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    rows = [f"Sentence {i} here.\tFrase {i} aquí." for i in range(300)]
    rows[7] = "no tab"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["data", "show", str(path), "--set", "data.min_freq=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    description = json.loads(result.output)
    assert description["malformed_lines"]["all"]["malformed"] == 1
    assert description["malformed_lines"]["all"]["examples"] == ["line 8: no tab"]
    assert sum(split["pairs"] for split in description["splits"].values()) == 299
    assert description["splits"]["train"]["source_unknown_rate"] == 0


def test_data_show_refuses_two_files(three_files):
    paths, _ = three_files
    result = CliRunner().invoke(cli, ["data", "show", str(paths["train"]), str(paths["test"])])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "three files" in result.output


def test_unknown_rates_are_measured_against_the_train_vocabulary(three_files):
    paths, _ = three_files
    paths["test"].write_text("zebra zebra the\n", encoding="utf-8")
    data = word_data(paths)
    assert np.sum(data.token_ids["test"] == data.vocab.unk) == 2
