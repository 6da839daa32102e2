"""What ``zoo data list`` and ``zoo data show NAME`` print: the registered datasets and a
JSON-serialisable description of each.

>>> list_datasets()
['fra_eng', 'fra_eng_words', 'sine', 'time_machine']
>>> describe("time_machine")["num_tokens"]["char"]
173428
"""

from __future__ import annotations

from zoo.data import fra_eng, sine, time_machine
from zoo.data.data_directory import data_dir
from zoo.data.errors import MalformedDataWarning
from zoo.data.fra_eng import FraEng
from zoo.data.language_modeling import load_corpus_splits
from zoo.data.shipped_files import SHA256
from zoo.data.sine import lag_features, noisy_sine
from zoo.data.tfds_columns import prepared_builder
from zoo.data.time_machine import TimeMachine
from zoo.data.translation import DEFAULT_MIN_FREQ, load_translation_splits
from zoo.data.word_corpus import FRA_ENG_WORDS, VOCAB_SIZE, fra_eng_words_text
from zoo.registry import datasets
from zoo.text.cleaning import tokenize
from zoo.text.formats import LanguageModelText
from zoo.text.vocab import LANGUAGE_MODEL_RESERVED_TOKENS, TRANSLATION_RESERVED_TOKENS, Vocab


def list_datasets() -> list[str]:
    """The names of all registered datasets, built-in and from plugins, sorted."""
    return datasets.names()


def describe(name: str) -> dict:
    """A JSON-serialisable description of a registered dataset: its splits and their
    sizes, token counts, vocabulary sizes and the sha256 of its source. Prepares a TFDS
    dataset (offline) if needed.

    Raises:
        zoo.registry.RegistryError: ``name`` is not a registered dataset.
    """
    entry = datasets.entry(name)
    describers = {
        TimeMachine: _describe_time_machine,
        FraEng: _describe_fra_eng,
        noisy_sine: _describe_sine,
        fra_eng_words_text: _describe_word_corpus,
    }
    if entry.obj in describers:
        description = describers[entry.obj]()
    else:
        description = _describe_other(entry.obj)
    return {"name": name, "provider": entry.provider, **description}


def _describe_word_corpus() -> dict:
    text = LanguageModelText("none", "word", line_ends="eos")
    parts = load_corpus_splits(FRA_ENG_WORDS, text)
    splits = {name: text.split(part) for name, part in parts.items()}
    return {
        "form": "lower case, words and punctuation split, a sentence a line, <unk> for rare words",
        "derived_from": "fra_eng (its English sentences, distinct, in a fixed order)",
        "splits": {name: {"tokens": len(tokens)} for name, tokens in splits.items()},
        "num_tokens": sum(len(tokens) for tokens in splits.values()),
        "vocab_size": len({token for tokens in splits.values() for token in tokens}),
        "vocab_note": f"at most {VOCAB_SIZE} types with <unk> and <eos>, as the Penn Treebank's",
        "lines": fra_eng_words_text().count("\n"),
    }


def _describe_time_machine() -> dict:
    splits = load_corpus_splits(TimeMachine.name)
    levels = ("char", "word")
    tokens = {
        name: {level: tokenize(text, level=level) for level in levels}
        for name, text in splits.items()
    }
    return {
        "version": str(TimeMachine.VERSION),
        "data_dir": data_dir(),
        "source_file": time_machine.SOURCE_FILE,
        "source_sha256": SHA256[time_machine.SOURCE_FILE],
        "splits": {
            name: {"examples": 1, "tokens": {level: len(tokens[name][level]) for level in levels}}
            for name in splits
        },
        "num_tokens": {
            level: sum(len(split[level]) for split in tokens.values()) for level in levels
        },
        "vocab_size": {
            level: len(
                Vocab(tokens["train"][level], reserved_tokens=LANGUAGE_MODEL_RESERVED_TOKENS)
            )
            for level in levels
        },
        "vocab_note": "built from the train split with min_freq=0, <unk> included",
    }


def _describe_fra_eng() -> dict:
    splits = load_translation_splits(FraEng.name)
    sides = {"en": "source", "fr": "target"}
    tokens = {
        name: {
            language: [tokenize(sentence, level="word") for sentence in getattr(pairs, side)]
            for language, side in sides.items()
        }
        for name, pairs in splits.items()
    }
    english = {name: set(pairs.source) for name, pairs in splits.items()}
    shared = {
        "train_validation": len(english["train"] & english["validation"]),
        "train_test": len(english["train"] & english["test"]),
        "validation_test": len(english["validation"] & english["test"]),
    }
    return {
        "version": str(FraEng.VERSION),
        "data_dir": data_dir(),
        "source_file": fra_eng.SOURCE_FILE,
        "source_sha256": SHA256[fra_eng.SOURCE_FILE],
        "split_seed": fra_eng.SPLIT_SEED,
        "attribution": "www.manythings.org/anki and tatoeba.org (CC BY 2.0)",
        "splits": {
            name: {
                "examples": len(pairs),
                "distinct_english_sentences": len(english[name]),
                "tokens": {language: sum(map(len, tokens[name][language])) for language in sides},
            }
            for name, pairs in splits.items()
        },
        "num_examples": sum(len(pairs) for pairs in splits.values()),
        "num_tokens": {
            language: sum(sum(map(len, split[language])) for split in tokens.values())
            for language in sides
        },
        "vocab_size": {
            language: len(
                Vocab(
                    tokens["train"][language],
                    min_freq=DEFAULT_MIN_FREQ,
                    reserved_tokens=TRANSLATION_RESERVED_TOKENS,
                )
            )
            for language in sides
        },
        "vocab_note": (
            f"built from the train split with min_freq={DEFAULT_MIN_FREQ}, "
            "4 reserved tokens included"
        ),
        "english_sentences_shared_between_splits": shared,
        "train_test_disjoint": shared["train_test"] == 0,
    }


def _describe_sine() -> dict:
    time, x = noisy_sine()
    features, _ = lag_features(x)
    return {
        "equation": "x_t = sin(0.01 t) + eps, eps ~ N(0, noise_std^2), t = 1..num_points",
        "num_points": len(time),
        "noise_std": sine.NOISE_STD,
        "tau": sine.TAU,
        "examples": len(features),
    }


def _describe_other(obj) -> dict:
    """A plugin's dataset: TFDS builders are prepared and their splits counted."""
    import tensorflow_datasets as tfds

    if isinstance(obj, type) and issubclass(obj, tfds.core.DatasetBuilder):
        builder = prepared_builder(obj.name)
        return {
            "version": str(builder.version),
            "data_dir": data_dir(),
            "splits": {
                name: {"examples": split.num_examples}
                for name, split in builder.info.splits.items()
            },
        }
    return {
        "object": f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    }


def describe_recipe_data(recipe: dict) -> dict:
    """What a (resolved) recipe's data is once prepared as training would prepare it,
    for a user's own corpus (``zoo data show --recipe``): the source, the task, the
    text settings that shaped it, and what the task says of its splits
    (``Task.describe_data``).

    Raises:
        DataError: a file is missing, empty or unreadable.
    """
    from zoo.tasks import get_task

    spec = recipe["data"]
    settings = {
        key: spec[key]
        for key in ("preprocess", "line_ends", "token_level", "tokenizer", "min_freq")
        if key in spec
    }
    description = {"source": spec["source"], "task": recipe["task"], "text": settings}
    return {**description, **get_task(recipe["task"]).describe_data(recipe)}


def describe_text_corpus(spec: dict) -> dict:
    """A language model's corpus (its recipe's ``data``): per split its tokens, the
    share of them that the train vocabulary does not hold (``<unk>``) and, with
    ``line_ends: eos``, its line ends; the vocabulary size."""
    import numpy as np

    from zoo.data.language_modeling import language_model_data_for

    data = language_model_data_for(spec)
    splits = {
        name: {
            "tokens": int(len(ids)),
            "unknown_rate": round(float(np.mean(ids == data.vocab.unk)), 6) if len(ids) else 0,
            **(
                {"eos": int(np.sum(ids == data.vocab["<eos>"]))}
                if spec["line_ends"] == "eos"
                else {}
            ),
        }
        for name, ids in data.token_ids.items()
    }
    return {"splits": splits, "vocab_size": len(data.vocab)}


def describe_sentence_pairs(spec: dict) -> dict:
    """A translator's pairs (its recipe's ``data``): per split its pairs, tokens and
    ``<unk>`` shares on each side; the vocabulary sizes; the malformed lines of TSV
    files."""
    import warnings

    import numpy as np

    from zoo.data.translation import translation_data_for
    from zoo.data.user_files import read_pairs_tsv

    source = spec["source"]
    description = {}
    with warnings.catch_warnings():  # malformed lines are reported below, not warned of
        warnings.simplefilter("ignore", MalformedDataWarning)
        data = translation_data_for(spec)
    splits = {}
    for name, dataset in (
        ("train", data.train),
        ("validation", data.validation),
        ("test", data.test),
    ):
        counts = np.zeros(4, np.int64)  # source tokens, source <unk>, target tokens, target <unk>
        # batch by batch as training reads them: bucketed batches differ in width, so
        # they cannot be joined into larger ones
        for (source_ids, valid_len, _), target in dataset:
            source_ids, target = source_ids.numpy(), target.numpy()
            source_mask = np.arange(source_ids.shape[1])[None, :] < valid_len.numpy()[:, None]
            target_mask = target != 0
            counts += [
                source_mask.sum(),
                (source_mask & (source_ids == data.src_vocab.unk)).sum(),
                target_mask.sum(),
                (target_mask & (target == data.tgt_vocab.unk)).sum(),
            ]
        splits[name] = {
            "pairs": data.num_examples[name],
            "source_tokens": int(counts[0]),
            "source_unknown_rate": round(float(counts[1] / max(1, counts[0])), 6),
            "target_tokens": int(counts[2]),
            "target_unknown_rate": round(float(counts[3] / max(1, counts[2])), 6),
        }
    description["splits"] = splits
    description["vocab_size"] = {"source": len(data.src_vocab), "target": len(data.tgt_vocab)}
    description["note"] = "tokens are cut to data.num_steps per sentence, <eos> included"
    if source != "fra_eng":
        files = source if isinstance(source, dict) else {"all": source}
        malformed = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MalformedDataWarning)
            for name, path in files.items():
                _, report = read_pairs_tsv(path)
                malformed[name] = {
                    "lines": report.num_lines,
                    "malformed": report.num_malformed,
                    "examples": [f"line {n}: {why}" for n, why in report.problems[:5]],
                }
        description["malformed_lines"] = malformed
    return description
