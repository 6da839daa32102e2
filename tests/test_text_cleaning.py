import pytest

from zoo.data import DataError
from zoo.text.cleaning import clean_time_machine, clean_translation, tokenize


def test_time_machine_cleaning_collapses_runs_of_non_letters_across_lines():
    text = "The Time Machine,\n\nby H. G. Wells [1898]\n\n I\n"
    assert clean_time_machine(text) == "the time machine by h g wells i "


def test_time_machine_cleaning_is_on_the_whole_text_not_line_by_line():
    # A line that ends in a letter joins the next line with one space, not zero or two.
    assert clean_time_machine("end\nstart") == "end start"
    assert clean_time_machine("end.\n\n  start") == "end start"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Café au lait", "café au lait"),  # letters of any script stay
        ("CO₂ in 2024, x_y", "co in x y"),  # numerals that are not digits go too
        ("x² Ⅻ y", "x y"),
    ],
)
def test_time_machine_cleaning_keeps_letters_only(raw, cleaned):
    assert clean_time_machine(raw) == cleaned


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Go.", "go ."),
        ("Hi!", "hi !"),
        ("Va\u00a0!", "va !"),
        ("Qui\u202f?", "qui ?"),
        ("J'ai faim, merci.", "j'ai faim , merci ."),
        ("Wait...", "wait . . ."),
        ("It's 3.14.", "it's 3 .14 ."),  # a space before, never after
        ("Already spaced .", "already spaced ."),
    ],
)
def test_translation_cleaning_matches_the_chapter(raw, cleaned):
    assert clean_translation(raw) == cleaned


def test_char_tokens_keep_spaces():
    assert tokenize("a b", level="char") == ["a", " ", "b"]


def test_word_tokens_split_on_spaces():
    assert tokenize("the  time machine ", level="word") == ["the", "time", "machine"]


def test_nltk_word_tokenizer_needs_no_downloaded_data():
    assert tokenize("j'ai faim.", level="word", tokenizer="nltk") == ["j", "'", "ai", "faim", "."]


@pytest.mark.parametrize(
    "arguments",
    [
        {"level": "byte"},
        {"level": "word", "tokenizer": "spacy"},
        {"level": "char", "tokenizer": "nltk"},
    ],
)
def test_bad_tokenize_arguments_are_one_line_errors(arguments):
    with pytest.raises(DataError) as error:
        tokenize("text", **arguments)
    assert "\n" not in str(error.value)
