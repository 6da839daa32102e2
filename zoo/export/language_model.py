"""What a language model's export holds and how it is checked: the ``step`` signature
(one token and the states in, logits and the states out), parity with Keras on the
test text, greedy generation, latency per token, and each file's test perplexity."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.decoding import TextGenerator
from zoo.decoding.keras_backend import KerasLanguageModel
from zoo.export.exporter import TaskExport, tensor_specs, timed
from zoo.export.litert import LiteRTLanguageModel, LiteRTModel, op_names
from zoo.export.manifest import VOCABULARY_FORMAT, text_conventions
from zoo.export.saved_model import SavedModelLanguageModel
from zoo.export.signatures import language_model_signatures
from zoo.export.text_signatures import generate_signature, in_graph
from zoo.export.tflite import convert, write_saved_model
from zoo.tasks.language_modeling import scored_ids
from zoo.text.formats import WHITESPACE, LanguageModelText
from zoo.text.vocab import UNK

PARITY_TOKENS = 256  # test tokens stepped through every backend
GENERATION_PREFIX, GENERATION_LENGTH = "time traveller", 100
CALIBRATION_STEPS = 200

# What export.json says of a language model (format 3): zoo generate's defaults (its
# --length and --temperature) and how zoo.decoding's TextGenerator and generate_tokens
# run the step signature.
GENERATE_LENGTH, GENERATE_TEMPERATURE = 50, 1.0
GENERATION_STEPS = [
    "start every state_i at zeros of its shape (signatures.step.states); feed the prefix's "
    "ids one at a time to step, tokens [1] int32, passing the returned states back in",
    "then, length times: the next token is the argmax of the last logits (greedy; ties to "
    "the lower id) or drawn from softmax(logits / temperature), computed in float64; "
    "nothing is suppressed (<unk> may come); feed it back the same way",
]
GENERATION_OUTPUT = (
    "the cleaned prefix, then the generated tokens joined by text.join (<eos> is a line "
    "end, with no space beside it); with words, one space between the two unless the "
    "prefix ends with a space or a line end or the continuation starts with a line end"
)


def prefix_tokens(text: LanguageModelText) -> str:
    """What export.json's ``text.tokens`` says of ``text``'s ``split``."""
    if text.tokenizer == "nltk":
        unit = (
            "nltk's WordPunctTokenizer: the matches of \\w+|[^\\w\\s]+ in Python's re (no "
            "JavaScript form: its \\w is ASCII)"
        )
    elif text.token_level == "word":
        unit = "the pieces between runs of text.whitespace"
    else:
        unit = "every code point (JavaScript: Array.from(text), not its UTF-16 units)"
    if text.line_ends == "eos":
        return (
            f"of each line of the cleaned text (lines end at \\n), {unit}, then <eos>; a "
            "prefix's last line gets no <eos> unless the prefix ends with a line end"
        )
    if text.keeps_lines and text.token_level == "char":
        return f"of the cleaned text, {unit}; a line end \\n is read as the token ' '"
    return f"of the cleaned text, {unit}"


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def step_through(backend, token_ids):
    """Logits [len, vocab] of ``backend`` reading ``token_ids`` one at a time from zeros
    (a progress bar on a terminal for a whole split: the card's quality)."""
    from zoo.reports.progress import counted

    states, rows = backend.initial_states(1), []
    for token in counted(token_ids, "reading the test split", "tokens"):
        logits, states = backend.step(np.asarray([token], np.int32), states)
        rows.append(np.asarray(logits)[0])
    return np.stack(rows)


def perplexity(backend, token_ids) -> float:
    """exp(mean NLL) of each next token of ``token_ids``, read as one running text."""
    log_probs = log_softmax(step_through(backend, token_ids[:-1]).astype(np.float64))
    targets = np.asarray(token_ids[1:])
    return float(math.exp(-log_probs[np.arange(len(targets)), targets].mean()))


class LanguageModelExport(TaskExport):
    litert_class = LiteRTLanguageModel

    def __init__(self, model, recipe: dict, run_path: Path, data):
        self.model, self.recipe, self.run_path, self.data = model, recipe, Path(run_path), data
        self.vocab = data.vocab
        self.keras = KerasLanguageModel(model)
        self.text = LanguageModelText.from_spec(recipe["data"])
        self.in_graph = in_graph(self.text)

    def assets(self):
        return [self.run_path / "vocab.txt", self.run_path / "recipe.yaml"]

    def manifest(self) -> dict:
        spec = self.recipe["data"]
        return {
            "vocab": {"file": "vocab.txt", "size": len(self.vocab), "unk_id": self.vocab[UNK]},
            "vocabulary_format": VOCABULARY_FORMAT,
            "text": {
                "cleaning": "time_machine",
                **self.text.manifest(),
                **text_conventions(),
                **({"whitespace": WHITESPACE} if self.text.token_level == "word" else {}),
                "tokens": prefix_tokens(self.text),
                "join": "" if spec["token_level"] == "char" else " ",
            },
            "decoding": {
                "length": GENERATE_LENGTH,
                "temperature": GENERATE_TEMPERATURE,
                "greedy": False,
                "steps": GENERATION_STEPS,
                "output": GENERATION_OUTPUT,
            },
            "usage": [
                "clean the prefix (text.cleaning_steps), cut it into tokens (text.tokens) and "
                "map them to ids with vocab.txt (unknown tokens: unk_id); a prefix without "
                "tokens is refused",
                "generate as decoding.steps says, binding tensors by name (tensor_binding)",
                "write the text as decoding.output says",
            ],
        }

    def saved_model_signatures(self):
        """``step`` (any batch), ``serve`` (whole sequences → logits) and, when the
        tokens can be split in the graph (no nltk tokenizer, no <eos> line ends),
        ``generate`` (text in,
        text out); with the vocabulary tables they need."""
        signatures = language_model_signatures(self.model, None)
        signatures["serve"] = (
            lambda tokens: {"logits": self.model(tokens)},
            [tf.TensorSpec([None, None], tf.int32, name="tokens")],
        )
        resources = []
        if self.in_graph:
            function, specs, lookup = generate_signature(self.model, self.vocab, self.text)
            signatures["generate"] = (function, specs)
            resources.append(lookup)
        return signatures, resources

    def write_saved_model(self, path):
        write_saved_model(self.model, path, *self.saved_model_signatures())

    def calibration(self):
        """(signature, inputs) pairs from the training text, states included."""
        states = self.keras.initial_states(1)
        for token in self.data.token_ids["train"][:CALIBRATION_STEPS]:
            tokens = np.asarray([token], np.int32)
            yield (
                "step",
                {
                    "tokens": tokens,
                    **{f"state_{i}": np.asarray(s, np.float32) for i, s in enumerate(states)},
                },
            )
            _, states = self.keras.step(tokens, states)

    def convert(self, quantization):
        embedding = self.model.embedding  # None: one-hot inputs
        return convert(
            self.model,
            language_model_signatures(self.model, 1),
            quantization,
            self.calibration,
            embeddings=[] if embedding is None else [embedding],
            tied=[self.model] if self.model.tie_embeddings else [],
        )

    def signature_specs(self, litert: LiteRTModel) -> dict:
        states = [f"state_{i}" for i in range(len(self.model.state_sizes))]
        names = {"inputs": ["tokens", *states], "outputs": ["logits", *states]}
        step = tensor_specs(litert, "step", names)
        step["states"] = step["inputs"][1:]
        return {"step": step}

    def generation_prefix(self) -> str:
        """The chapter's "time traveller", or on other text its test split's first
        tokens (a prefix the model's own text makes sense of)."""
        if self.recipe["data"]["source"] == "time_machine" and self.text.preprocess == "chapter":
            return GENERATION_PREFIX
        count = 14 if self.text.token_level == "char" else 3
        tokens = self.vocab.to_tokens(self.data.token_ids["test"][:count])
        return self.text.join([token for token in tokens if token != UNK]).strip() or "a"

    def measure(self, folder: Path, files: list, with_saved_model: bool) -> dict:
        test_ids = scored_ids(self.data, self.recipe, "test")
        parity_ids = test_ids[:PARITY_TOKENS]
        reference = step_through(self.keras, parity_ids)
        backends = {}
        if with_saved_model:
            backends["saved_model"] = SavedModelLanguageModel(
                folder / "saved_model", self.model.state_sizes
            )
        backends.update(self.parity_backends(folder, files))

        prefix = self.generation_prefix()

        def generate(backend):
            generator = TextGenerator(backend, self.vocab, self.text)
            return generator.generate(prefix, GENERATION_LENGTH, greedy=True)

        keras_text = generate(self.keras)
        parity = {
            "inputs": f"the first {len(parity_ids)} tokens of the test split, one step at a time",
            "greedy_prefix": prefix,
            "greedy_length": GENERATION_LENGTH,
            "keras_greedy": keras_text,
            "backends": {},
        }
        for name, backend in backends.items():
            difference = float(np.max(np.abs(step_through(backend, parity_ids) - reference)))
            parity["backends"][name] = {
                "max_abs_logit_difference": difference,
                "greedy_identical": generate(backend) == keras_text,
            }
        latency = {"unit": "seconds per generated token, batch 1"}
        token = np.asarray([parity_ids[0]], np.int32)
        for name, backend in {"keras": self.keras, **backends}.items():
            states = backend.initial_states(1)
            latency[name] = timed(lambda b=backend, s=states: b.step(token, s), 50)
        tokens = int(len(test_ids) - 1)
        quality = {"metric": "perplexity", "key": "perplexity", "split": "test"}
        quality["scope"] = f"{tokens:,} tokens"
        quality["tokens"] = tokens
        quality["keras"] = perplexity(self.keras, test_ids)
        for entry in files:
            backend = self.litert_backend(folder, entry, "interpreter")
            quality[entry["file"]] = perplexity(backend, test_ids)
            entry["ops"] = op_names((folder / entry["file"]).read_bytes())
            if entry["quantization"] != "none":
                latency[f"tflite/{entry['quantization']}"] = timed(
                    lambda b=backend: b.step(token, b.initial_states(1)), 50
                )
        return {"parity": parity, "latency": latency, "quality": quality}
