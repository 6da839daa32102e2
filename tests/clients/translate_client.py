"""A translator client written from an export's ``export.json`` alone (format 3), as an
app developer would write one: no zoo, no TensorFlow; NumPy and LiteRT's Python
``Interpreter`` run the TFLite file.

Every step follows a field of ``export.json``: the vocabularies as ``vocabulary_format``
says, the cleaning as ``text.cleaning_steps`` and ``text.regex_dialect`` (the Python
form of each pattern), the tokens as ``text.tokens`` (split at ``text.whitespace``),
``encode`` and ``decode_step`` bound by name (``tensor_binding``), the rows of
``decode_step`` as ``decoding.rows``, the search as ``decoding.beam_search`` and the
translation as ``decoding.output``. tests/test_export_contract.py checks that it
translates as ``zoo translate`` does: ``Translator(EXPORT_DIR).translate("i'm home .", 4)``.
"""

import json
import re

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def read_vocabulary(path: str) -> list[str]:
    """The tokens by id: UTF-8, one a line, each line ended by "\\n", never stripped."""
    with open(path, encoding="utf-8", newline="") as file:
        text = file.read()
    return text[:-1].split("\n")  # the last line ends with "\n" too


def apply_steps(steps: list[dict], text: str) -> str:
    """text.cleaning_steps (or join_steps) in order, each pattern's Python form."""
    for step in steps:
        if "replace" in step:
            pattern = step["replace"]
            if isinstance(pattern, dict):
                pattern = pattern["python"]
            text = re.sub(pattern, step["with"], text)  # "with" is plain text
        elif step.get("lowercase"):
            text = text.lower()
        elif step.get("trim"):
            text = text.strip(" ")
    return text


def best_ids(values: np.ndarray, width: int) -> np.ndarray:
    """The ids of the ``width`` highest values, higher first, ties to the lower id."""
    threshold = np.partition(values, -width)[-width]
    ids = np.flatnonzero(values >= threshold)  # every tie at the threshold, ids ascending
    return ids[np.argsort(-values[ids], kind="stable")][:width]


class Translator:
    """An export folder's translator: ``translate(sentence, beam_width)``."""

    def __init__(self, folder: str):
        with open(f"{folder}/export.json", encoding="utf-8") as file:
            manifest = json.load(file)
        if (manifest["format"], manifest["format_version"]) != ("zoo-export", 3):
            raise ValueError("this client reads export.json format zoo-export version 3")
        if manifest["tensor_binding"]["by"] != "name" or manifest["task"] != "translator":
            raise ValueError("this client runs translators whose tensors are bound by name")
        self.text, self.decoding = manifest["text"], manifest["decoding"]
        if self.text["tokenizer"] is not None:
            raise ValueError("this client cuts sentences at whitespace only")
        if manifest["vocabulary_format"]["encoding"] != "utf-8":
            raise ValueError("this client reads UTF-8 vocabularies")
        self.source_ids = {
            token: index
            for index, token in enumerate(
                read_vocabulary(f"{folder}/{manifest['source_vocab']['file']}")
            )
        }
        self.target_tokens = read_vocabulary(f"{folder}/{manifest['target_vocab']['file']}")
        self.source_special = manifest["source_vocab"]["special_ids"]
        self.target_special = manifest["target_vocab"]["special_ids"]
        interpreter = Interpreter(model_path=f"{folder}/{manifest['tflite'][0]['file']}")
        self.encode = interpreter.get_signature_runner("encode")
        self.decode_step = interpreter.get_signature_runner("decode_step")
        inputs = manifest["signatures"]["decode_step"]["inputs"]
        self.carried = [tensor["name"] for tensor in inputs if tensor["name"] != "token"]
        self.rows = self.decoding["decode_step_rows"]

    def source(self, sentence: str) -> dict:
        """encode's inputs by name: the cleaned sentence's first num_steps - 1 tokens'
        ids (unknown: <unk>), <eos>, <pad> up to num_steps; valid_len."""
        cleaned = apply_steps(self.text["cleaning_steps"], sentence)
        words = [word for word in re.split(self.text["whitespace"] + "+", cleaned) if word]
        if not words:
            raise ValueError(f"cannot translate an empty sentence: {sentence!r}")
        num_steps = self.decoding["num_steps"]
        unknown, eos, pad = (self.source_special[t] for t in ("<unk>", "<eos>", "<pad>"))
        ids = [self.source_ids.get(word, unknown) for word in words[: num_steps - 1]] + [eos]
        valid_len = len(ids)
        ids += [pad] * (num_steps - len(ids))
        return {
            "source": np.asarray([ids], np.int32),
            "valid_len": np.asarray([valid_len], np.int32),
        }

    def step(self, tokens: np.ndarray, carried: dict) -> dict:
        """decode_step on k rows: padded to its fixed rows with copies of row 0, every
        output cut back to the first k rows."""
        k = len(tokens)
        if k > self.rows:
            raise ValueError(f"decode_step runs at most {self.rows} rows, not {k}")
        copies = np.zeros(self.rows - k, np.int64)
        feed = {"token": np.concatenate([tokens, tokens[copies]]).astype(np.int32)}
        for name in self.carried:
            feed[name] = np.concatenate([carried[name], carried[name][copies]])
        return {name: value[:k] for name, value in self.decode_step(**feed).items()}

    def search(self, encoded: dict, k: int) -> list[int]:
        """decoding.beam_search, step by step; greedy is k = 1."""
        alpha, max_length = self.decoding["length_penalty_alpha"], self.decoding["max_length"]
        bos, eos = self.target_special["<bos>"], self.target_special["<eos>"]
        carried = {name: np.repeat(encoded[name], k, axis=0) for name in self.carried}
        tokens = np.full(k, bos, np.int32)
        log_p = np.array([0.0] + [-np.inf] * (k - 1))
        finished = np.zeros(k, bool)
        histories: list[list[int]] = [[] for _ in range(k)]
        best_score, best = -np.inf, []

        def offer(rows, length):
            nonlocal best_score, best
            if rows:
                scores = [log_p[row] / length**alpha for row in rows]
                top = int(np.argmax(scores))  # ties to the lower row
                if scores[top] > best_score:
                    best_score, best = scores[top], histories[rows[top]]

        for t in range(1, max_length + 1):
            outputs = self.step(tokens, carried)
            log_probs = outputs.pop("log_probs").astype(np.float64)
            carried.update(outputs)
            log_probs[:, self.decoding["never_emit"]] = -np.inf
            log_probs[finished] = -np.inf
            log_probs[finished, eos] = 0.0
            width = min(k, log_probs.shape[1])
            parents = np.repeat(np.arange(k), width)
            ids = np.concatenate([best_ids(log_probs[row], width) for row in range(k)])
            scores = log_p[parents] + log_probs[parents, ids]
            chosen = np.argsort(-scores, kind="stable")[:k]  # ties to the earlier candidate
            parents, tokens, log_p = parents[chosen], ids[chosen].astype(np.int32), scores[chosen]
            was_finished = finished[parents]
            finished = was_finished | (tokens == eos)
            histories = [
                histories[p] + [int(token)] for p, token in zip(parents, tokens, strict=True)
            ]
            carried = {name: value[parents] for name, value in carried.items()}
            newly = finished & ~was_finished & np.isfinite(log_p)
            offer([int(row) for row in np.flatnonzero(newly)], t)
            alive = ~finished & np.isfinite(log_p)
            if not alive.any():
                break
        else:
            offer([int(row) for row in np.flatnonzero(alive)], max_length)
        return best

    def output(self, ids: list[int]) -> str:
        """decoding.output: tokens without <eos>, <pad>, <bos>, joined by one space."""
        dropped = {self.target_special[token] for token in ("<eos>", "<pad>", "<bos>")}
        words = [self.target_tokens[i] for i in ids if i not in dropped]
        return apply_steps(self.text.get("join_steps", []), " ".join(words))

    def translate(self, sentence: str, beam_width: int | None = None) -> str:
        k = beam_width or self.decoding["beam_width"]
        encoded = self.encode(**self.source(sentence))
        return self.output(self.search(encoded, k))
