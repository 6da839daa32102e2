import collections
import doctest
import random
import subprocess
import sys
from pathlib import Path

import pytest
from test_data_support import data_dir  # noqa: F401  (fixture)

import zoo.text.subword
from zoo.errors import DataError
from zoo.text.cleaning import tokenize
from zoo.text.subword import SUFFIX_PREFIX, WordPiece, learn_wordpiece
from zoo.text.vocab import TRANSLATION_RESERVED_TOKENS, UNK

ROOT = Path(__file__).resolve().parent.parent
NUM_SENTENCES = 5000
VOCAB_SIZE = 1500
SPANISH = [
    "¿ dónde está la estación de tren ?",
    "¡ qué sorpresa verte aquí !",
    "¿ por qué no vienes mañana con nosotros ?",
    "el niño pequeño come una manzana .",
    "¡ feliz cumpleaños , señora muñoz !",
    "¿ cuántos años tiene tu hermana ?",
    "mañana por la mañana iremos al campo .",
]
# Words with "#", so that the vocabulary has "#" and "###" pieces for the edge cases.
HASH_WORDS = ["#", "##", "#1", "c#", "f#", "###", "#hola"] * 10
HASH_EDGE_CASES = ["##", "###", "####", "##s", "##ing", "#s", "s#", "a##b", "c##", "#1#", "##é"]


def words_of(sentences):
    return [tokenize(sentence, level="word") for sentence in sentences]


@pytest.fixture(scope="module")
def corpora(data_dir):  # noqa: F811
    from zoo.data.translation import load_translation_splits

    train = load_translation_splits("fra_eng")["train"]
    return {
        "english": words_of(train.source[: NUM_SENTENCES + 1000]),
        "french": words_of(train.target[: NUM_SENTENCES + 1000]),
        "spanish": words_of(SPANISH),
    }


@pytest.fixture(scope="module")
def training_sentences(corpora):
    return (
        corpora["english"][:NUM_SENTENCES]
        + corpora["french"][:NUM_SENTENCES]
        + corpora["spanish"]
        + [HASH_WORDS]
    )


@pytest.fixture(scope="module")
def vocabulary(training_sentences):
    return learn_wordpiece(training_sentences, VOCAB_SIZE, TRANSLATION_RESERVED_TOKENS)


@pytest.fixture(scope="module")
def wordpiece(vocabulary):
    return WordPiece(vocabulary, unknown=UNK, reserved_tokens=TRANSLATION_RESERVED_TOKENS)


# --- learning


def test_learning_puts_the_reserved_tokens_first_once_and_nothing_of_its_own(vocabulary):
    assert vocabulary[:4] == list(TRANSLATION_RESERVED_TOKENS)
    assert len(set(vocabulary)) == len(vocabulary)
    assert "[UNK]" not in vocabulary
    assert 0.9 * VOCAB_SIZE <= len(vocabulary) <= VOCAB_SIZE
    assert "##ing" in vocabulary and "##s" in vocabulary  # real subwords were learned


@pytest.mark.slow
def test_learning_is_deterministic_whatever_the_sentence_order(training_sentences, vocabulary):
    shuffled = list(training_sentences)
    random.Random(0).shuffle(shuffled)
    assert learn_wordpiece(shuffled, VOCAB_SIZE, TRANSLATION_RESERVED_TOKENS) == vocabulary


def test_a_reserved_token_that_is_also_a_word_is_not_repeated(corpora):
    reserved = ["<pad>", ".", "<unk>", "."]
    vocabulary = learn_wordpiece(corpora["english"][:500], 300, reserved)
    assert vocabulary[:3] == ["<pad>", ".", "<unk>"]
    assert vocabulary.count(".") == 1
    assert len(vocabulary) <= 300


def test_words_are_learned_as_given_without_lower_casing_or_splitting():
    sentences = [["Hello", "don't", "café"]] * 30 + [["hello"]]
    vocabulary = learn_wordpiece(sentences, 100, ["<unk>"])
    assert {"Hello", "don't", "café", "H", "'"} <= set(vocabulary)


def test_every_training_word_gets_pieces(training_sentences, wordpiece):
    words = {word for sentence in training_sentences for word in sentence}
    assert [word for word in words if wordpiece.tokenize_word(word) == [UNK]] == []


def test_a_word_seen_once_is_split_rather_than_unknown(training_sentences, wordpiece):
    counts = collections.Counter(word for words in training_sentences for word in words)
    rare = sorted(word for word, count in counts.items() if count == 1 and len(word) > 5)
    assert len(rare) > 100
    for word in rare:
        pieces = wordpiece.tokenize_word(word)
        assert UNK not in pieces
        assert wordpiece.detokenize(pieces) == [word]
    assert sum(len(wordpiece.tokenize_word(word)) > 1 for word in rare) > 0.9 * len(rare)


@pytest.mark.parametrize(
    "sentences, vocab_size, message",
    [
        ([["a", "b"]], 4, "no room"),
        ([["ab", "cd"]], 8, "smaller than the 12 tokens"),
        ([[], [""]], 100, "no words"),
        ([["<pad>"]], 100, "no words"),
    ],
)
def test_too_small_a_size_or_no_words_is_a_one_line_error(sentences, vocab_size, message):
    with pytest.raises(DataError, match=message) as error:
        learn_wordpiece(sentences, vocab_size, TRANSLATION_RESERVED_TOKENS)
    assert "\n" not in str(error.value)


# --- round trip


@pytest.mark.parametrize("language", ["english", "french", "spanish"])
def test_detokenize_gives_back_the_training_words(corpora, wordpiece, language):
    for words in corpora[language][:NUM_SENTENCES]:
        assert wordpiece.detokenize(wordpiece.tokenize(words)) == words


@pytest.mark.parametrize("language", ["english", "french"])
def test_detokenize_gives_back_unseen_sentences_without_unknown_words(corpora, wordpiece, language):
    unseen = corpora[language][NUM_SENTENCES:]
    known = [words for words in unseen if UNK not in wordpiece.tokenize(words)]
    assert len(known) > 0.9 * len(unseen)
    for words in known:
        assert wordpiece.detokenize(wordpiece.tokenize(words)) == words


def test_spanish_marks_unseen_in_training_make_their_words_unknown(corpora):
    wordpiece = WordPiece(learn_wordpiece(corpora["english"][:NUM_SENTENCES], 500, [UNK]))
    words = ["¿", "por", "que", "tren", "?", "niño", "¡"]
    unknown = [word for word in words if wordpiece.tokenize_word(word) == [UNK]]
    assert unknown == ["¿", "niño", "¡"]


# --- agreement with tensorflow-text


@pytest.fixture(scope="module", params=["FastWordpieceTokenizer", "WordpieceTokenizer"])
def reference_tokenize(request, vocabulary):
    """tensorflow-text's tokenizer on the same vocabulary, as ``words → list of pieces``."""
    tf_text = pytest.importorskip("tensorflow_text")
    import tensorflow as tf

    # Its limit counts UTF-8 bytes; the words compared have at most 100 bytes or 101 ASCII.
    options = {"suffix_indicator": SUFFIX_PREFIX, "unknown_token": UNK, "max_bytes_per_word": 100}
    if request.param == "FastWordpieceTokenizer":
        tokenizer = tf_text.FastWordpieceTokenizer(
            vocabulary,
            token_out_type=tf.string,
            no_pretokenization=True,
            support_detokenization=True,
            **options,
        )
    else:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                vocabulary, tf.range(len(vocabulary), dtype=tf.int64)
            ),
            default_value=-1,
        )
        tokenizer = tf_text.WordpieceTokenizer(table, token_out_type=tf.string, **options)

    def tokenize_words(words):
        pieces = tokenizer.tokenize(tf.constant(words, tf.string)).to_list()
        return [[piece.decode("utf-8") for piece in word_pieces] for word_pieces in pieces]

    return tokenize_words


def test_tokenize_agrees_with_tensorflow_text(corpora, wordpiece, reference_tokenize):
    seen = sorted({word for language in corpora.values() for words in language for word in words})
    pick = random.Random(0).choice
    made_up = [pick(seen) + pick(seen) for _ in range(2000)] + [word[::-1] for word in seen]
    odd = ["naïveté", "garçon☃", "日本", "ßtraße", "e\u0301té", "x" * 100, "x" * 101, "é" * 50]
    words = seen + made_up + odd + HASH_EDGE_CASES + [""]
    assert len(words) > 10000
    expected = reference_tokenize(words)
    assert [wordpiece.tokenize_word(word) for word in words] == expected
    assert sum(pieces == [UNK] for pieces in expected) >= 4  # the comparison saw unknown words
    assert sum(len(pieces) > 1 for pieces in expected) > 1000  # and split words


# --- the tokenizer alone


def test_longest_match_first_and_unknown_as_a_whole():
    wordpiece = WordPiece(["<unk>", "un", "unb", "##b", "##bel", "##ie", "##iev", "##able"])
    # "unb" is taken, then no piece continues with "e": greedy, no backtracking to "un"
    assert wordpiece.tokenize_word("unbelievable") == ["<unk>"]
    wordpiece = WordPiece(["<unk>", "un", "##bel", "##b", "##ie", "##iev", "##able", "##e"])
    assert wordpiece.tokenize_word("unbelievable") == ["un", "##bel", "##iev", "##able"]
    assert wordpiece.tokenize(["un", "unx", "un"]) == ["un", "<unk>", "un"]
    assert wordpiece.tokenize_word("") == []


def test_the_length_limit_counts_code_points():
    wordpiece = WordPiece(["é", "##é"], unknown="?", max_chars_per_word=3)
    assert wordpiece.tokenize_word("ééé") == ["é", "##é", "##é"]  # 6 UTF-8 bytes
    assert wordpiece.tokenize_word("éééé") == ["?"]


def test_detokenize_joins_continuations_and_keeps_special_tokens_apart():
    wordpiece = WordPiece(["a", "##b"], reserved_tokens=["<eos>"])
    assert wordpiece.detokenize(["a", "##b", "##b", "a"]) == ["abb", "a"]
    assert wordpiece.detokenize(["##b", "##b", "a"]) == ["bb", "a"]  # a stray continuation
    assert wordpiece.detokenize(["a", "<unk>", "##b", "<eos>", "##b"]) == [
        "a",
        "<unk>",
        "b",
        "<eos>",
        "b",
    ]
    assert wordpiece.detokenize(["##", "##b"]) == ["##b"]  # "##" alone is a word
    assert wordpiece.detokenize([]) == []


def test_hash_words_come_back_unless_they_begin_with_the_suffix_prefix(wordpiece):
    for word in HASH_EDGE_CASES:
        if not word.startswith(SUFFIX_PREFIX) or word == SUFFIX_PREFIX:
            assert wordpiece.detokenize(wordpiece.tokenize_word(word)) == [word]


def test_manifest_says_how_to_reproduce_tokenize():
    wordpiece = WordPiece(["a"], unknown="[UNK]", max_chars_per_word=20)
    assert wordpiece.manifest() == {
        "kind": "wordpiece",
        "suffix_prefix": "##",
        "unknown": "[UNK]",
        "max_chars_per_word": 20,
    }


def test_docstring_examples():
    result = doctest.testmod(zoo.text.subword, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_module_imports_without_tensorflow():
    check = "import sys, zoo.text.subword; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)
