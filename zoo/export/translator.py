"""What a translator's export holds and how it is checked: ``encode`` (one sentence)
and ``decode_step`` (one word for every beam at once, the rows fixed at the beam width
the export is made for), parity with Keras on the chapter's sentences, beam search
through every backend, latency per sentence, and each file's test BLEU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.decoding import SentenceTranslator
from zoo.decoding.keras_backend import KerasTranslator
from zoo.export.exporter import TaskExport, tensor_specs, timed
from zoo.export.litert import LiteRTModel, LiteRTTranslator, op_names
from zoo.export.manifest import VOCABULARY_FORMAT, text_conventions
from zoo.export.saved_model import SavedModelTranslator
from zoo.export.signatures import carried_names, translator_signatures
from zoo.export.text_signatures import in_graph, translate_signature
from zoo.export.tflite import convert, write_saved_model
from zoo.tasks.translation import (
    CHAPTER_EXAMPLES,
    bleu_settings,
    group_pairs,
    pairs_for_sources,
)
from zoo.text.formats import WHITESPACE, TranslationText
from zoo.text.vocab import BOS, EOS, PAD, UNK

PARITY_STEPS = 6  # decode_step calls compared per sentence
CALIBRATION_SENTENCES = 64

# What export.json says of a translator (format 3): how zoo's LiteRTTranslator,
# SentenceTranslator and zoo.decoding.beam_search run the files, step by step.
SENTENCE_TOKENS = {
    None: "the cleaned sentence cut at runs of text.whitespace, empty pieces dropped",
    "nltk": "nltk's WordPunctTokenizer: the matches of \\w+|[^\\w\\s]+ in Python's re (no "
    "JavaScript form: its \\w is ASCII)",
    "subword": "the cleaned sentence cut at runs of text.whitespace, empty pieces dropped, "
    "each word then cut into pieces as text.subword says",
}
DECODE_STEP_ROWS = (
    "decode_step takes exactly decode_step_rows rows (its token's first dimension): k < "
    "decode_step_rows rows (greedy: k = 1) are padded with copies of row 0, token and every "
    "carried tensor, and the first k rows of each output are read; a wider beam cannot run "
    "on this file"
)
BEAM_SEARCH = [
    "k = the beam width asked (1 to decode_step_rows; default beam_width); log P is summed "
    "in float64 from decode_step's float32 log_probs",
    "start: k rows, each with token <bos> and encode's outputs as its carried tensors; log P "
    "= 0 for row 0, -inf for the others; none finished; no best hypothesis",
    "for t = 1 to max_length: run decode_step with token = the rows' tokens and every other "
    "input = the carried tensor of its name; log_probs [rows, vocabulary] are the next "
    "token's log-probabilities, and each other output replaces the carried tensor of its "
    "name (state_i)",
    "a row's extensions: its log_probs with every never_emit id at -inf (greedy too); a "
    "finished row's: <eos> at 0, every other id at -inf",
    "each row's candidates: its min(k, vocabulary) best extensions, higher value first, ties "
    "to the lower id; a candidate's log P = its row's log P + the extension's value",
    "the k candidates of highest log P, of all rows' candidates in row order (row 0's "
    "first), ties to the earlier one, become the new rows in that order; every carried "
    "tensor's rows follow their parent rows",
    "a new row is finished when its parent was or its token is <eos>; each newly finished "
    "row with a finite log P is offered with L = t: the best of those offered (ties to the "
    "lower row) replaces the best hypothesis if its score is strictly higher",
    "stop when no row is unfinished with a finite log P; after step max_length, the "
    "unfinished rows with a finite log P are offered the same way with L = max_length "
    "(max_length counts <eos>)",
    "the answer: the best hypothesis' tokens y_1..y_L",
]
OUTPUT_STEPS = [
    "map y_1..y_L to tokens with tgt_vocab.txt and drop <eos>, <pad> and <bos> (<unk> "
    "stays: only allow_unk emits it)",
    "with text.tokenizer subword, a piece text.subword.suffix_prefix + x (x not empty) "
    "appends x to the word before it, or starts the word x when none is before it or that "
    "is text.subword.unknown or a special token",
    "join the words with one space (text.join)",
    "then apply text.join_steps, if any, as text.cleaning_steps are applied",
]


class TranslatorExport(TaskExport):
    """A translator's export. The card's BLEU is measured on the whole test split, the
    pairs ``zoo evaluate``, ``metrics.json`` and the registry report, so that one figure
    means one thing everywhere; ``quality_sentences`` (the split's first that many
    distinct sources) trades that for speed, and the card's ``scope`` says so."""

    litert_class = LiteRTTranslator

    def __init__(self, model, recipe, run_path, data, beam_width=None, quality_sentences=None):
        self.model, self.recipe, self.run_path, self.data = model, recipe, Path(run_path), data
        self.src_vocab, self.tgt_vocab = data.src_vocab, data.tgt_vocab
        decode = recipe["decode"]
        self.beam_width = beam_width or recipe["export"].get("beam_width") or decode["beam_width"]
        self.num_steps = recipe["data"]["num_steps"]
        self.quality_sentences = quality_sentences
        self.keras = KerasTranslator(model)
        self.text = TranslationText.from_spec(recipe["data"], self.src_vocab)
        self.in_graph = in_graph(self.text)

    def assets(self):
        return [self.run_path / name for name in ("src_vocab.txt", "tgt_vocab.txt", "recipe.yaml")]

    def special_ids(self, vocab):
        return {token: vocab[token] for token in (PAD, BOS, EOS, UNK)}

    def manifest(self) -> dict:
        decode = self.recipe["decode"]
        return {
            "source_vocab": {
                "file": "src_vocab.txt",
                "size": len(self.src_vocab),
                "special_ids": self.special_ids(self.src_vocab),
            },
            "target_vocab": {
                "file": "tgt_vocab.txt",
                "size": len(self.tgt_vocab),
                "special_ids": self.special_ids(self.tgt_vocab),
            },
            "vocabulary_format": VOCABULARY_FORMAT,
            "text": {
                "cleaning": "translation",
                **self.text.manifest(),
                **text_conventions(),
                "token_level": "word",
                "whitespace": WHITESPACE,
                "tokens": SENTENCE_TOKENS[self.text.tokenizer],
                "join": " ",
            },
            "decoding": {
                "num_steps": self.num_steps,
                "max_length": decode["max_length"],
                "beam_width": self.beam_width,
                "decode_step_rows": self.beam_width,
                "length_penalty_alpha": decode["length_penalty_alpha"],
                "allow_unk": decode.get("allow_unk", False),
                "never_emit": [] if decode.get("allow_unk") else [self.tgt_vocab[UNK]],
                "score": "(1 / L^alpha) log P(y_1..y_L), L counting <eos>",
                "rows": DECODE_STEP_ROWS,
                "beam_search": BEAM_SEARCH,
                "output": OUTPUT_STEPS,
            },
            "usage": [
                "clean the sentence (text.cleaning_steps), cut it into tokens (text.tokens), "
                "keep the first num_steps - 1, map them with src_vocab.txt (unknown: <unk>), "
                "append <eos> and pad with <pad> to num_steps ids: source [1, num_steps] "
                "int32, valid_len [1] int32 = tokens + 1; a sentence without tokens is refused",
                "run encode once per sentence, binding tensors by name (tensor_binding)",
                "search as decoding.beam_search says (greedy is k = 1), each decode_step call "
                "as decoding.rows says",
                "write the translation as decoding.output says",
            ],
        }

    def saved_model_signatures(self):
        """``encode`` and ``decode_step`` (any batch) and, when the words can be split in
        the graph (no nltk tokenizer), ``translate`` (sentences in, beam search in the
        graph, translations out); with the vocabulary tables they need."""
        signatures = translator_signatures(self.model, self.num_steps, None, None)
        resources = []
        if self.in_graph:
            function, specs, lookups = translate_signature(
                self.model, self.src_vocab, self.tgt_vocab, self.recipe, self.text
            )
            signatures["translate"] = (function, specs)
            resources += lookups
        return signatures, resources

    def write_saved_model(self, path):
        write_saved_model(self.model, path, *self.saved_model_signatures())

    def calibration(self):
        """(signature, inputs) pairs for int8: decode_step fed the reference words of
        training sentences (teacher forcing) from the states they lead to. Only
        decode_step is calibrated, so only it runs in int8: TF 2.21's calibrator crashes
        (a segmentation fault) on the encoder's WHILE loop, and encode runs once per
        sentence, decode_step once per word and beam."""
        names = carried_names(self.model, self.num_steps)
        for batch in self.data.train.take(1):
            (source, valid_len, decoder_input), _ = batch
            for row in range(min(CALIBRATION_SENTENCES, len(source))):
                ids = np.asarray(source[row : row + 1]).astype(np.int32)
                length = np.asarray(valid_len[row : row + 1]).astype(np.int32)
                padded = np.zeros((1, self.num_steps), np.int32)
                padded[:, : ids.shape[1]] = ids[:, : self.num_steps]
                state = self.keras.encode(padded, length)
                for token in np.asarray(decoder_input[row])[:PARITY_STEPS]:
                    tokens = np.full(self.beam_width, token, np.int32)
                    rows = {n: np.repeat(np.asarray(state[n]), self.beam_width, 0) for n in names}
                    yield "decode_step", {"token": tokens, **rows}
                    _, state = self.keras.decode_step(np.asarray([token], np.int32), state)

    def convert(self, quantization):
        signatures = translator_signatures(self.model, self.num_steps, 1, self.beam_width)
        encoder, decoder = self.model.encoder, self.model.decoder
        return convert(
            self.model,
            signatures,
            quantization,
            self.calibration,
            embeddings=[encoder.embedding, decoder.embedding],
            tied=[decoder] if decoder.tie_embeddings else [],
        )

    def signature_specs(self, litert: LiteRTModel) -> dict:
        names = carried_names(self.model, self.num_steps)
        states = [name for name in names if name.startswith("state_")]
        return {
            "encode": tensor_specs(
                litert, "encode", {"inputs": ["source", "valid_len"], "outputs": names}
            ),
            "decode_step": tensor_specs(
                litert,
                "decode_step",
                {"inputs": ["token", *names], "outputs": ["log_probs", *states]},
            ),
        }

    def translator(self, backend):
        translator = SentenceTranslator.from_recipe(
            backend, self.src_vocab, self.tgt_vocab, self.recipe
        )
        translator.beam_width = self.beam_width
        return translator

    def trace(self, backend, sentence, tokens):
        """log_probs [steps, vocab] of ``backend`` fed ``tokens`` after encoding ``sentence``."""
        ids, valid_len = self.translator(backend).source_ids([sentence])
        state, rows = backend.encode(ids, valid_len), []
        for token in tokens:
            log_probs, state = backend.decode_step(np.asarray([token], np.int32), state)
            rows.append(np.asarray(log_probs)[0])
        return np.stack(rows)

    def bleu(self, backend, num_pairs):
        from zoo.metrics import corpus_bleu

        pairs = self.data.test_pairs
        sources, pair_groups, _ = group_pairs(pairs, num_pairs)
        translations = self.translator(backend).translate(sources, warn=False)
        hypotheses = [translations[group] for group in pair_groups]
        scoring = bleu_settings(self.text.preprocess)
        return corpus_bleu(hypotheses, pairs.target_raw[:num_pairs], **scoring)[0]

    def measure(self, folder: Path, files: list, with_saved_model: bool) -> dict:
        sentences = list(CHAPTER_EXAMPLES)
        keras_translator = self.translator(self.keras)
        keras_translations = keras_translator.translate(sentences)
        backends = {}
        if with_saved_model:
            backends["saved_model"] = SavedModelTranslator(
                folder / "saved_model", self.model.num_states
            )
        backends.update(self.parity_backends(folder, files))
        bos = self.tgt_vocab[BOS]
        fed = {}  # each sentence's tokens to feed: <bos>, then the Keras greedy words
        for sentence in sentences:
            (greedy,) = keras_translator.translate([sentence], beam_width=1)
            words = self.tgt_vocab[greedy.split()] if greedy else []
            fed[sentence] = [bos, *words][:PARITY_STEPS]
        reference = {s: self.trace(self.keras, s, fed[s]) for s in sentences}
        parity = {
            "inputs": f"the chapter's {len(sentences)} sentences, decode_step fed <bos> and "
            f"the Keras greedy words ({PARITY_STEPS} steps at most)",
            "beam_width": self.beam_width,
            "keras_translations": dict(zip(sentences, keras_translations, strict=True)),
            "backends": {},
        }
        for name, backend in backends.items():
            difference = max(
                float(np.max(np.abs(self.trace(backend, s, fed[s]) - reference[s])))
                for s in sentences
            )
            translations = self.translator(backend).translate(sentences)
            parity["backends"][name] = {
                "max_abs_log_prob_difference": difference,
                "beam_search_identical": translations == keras_translations,
            }
        latency = {
            "unit": f'seconds per translated sentence ("i\'m home ."), beam {self.beam_width}'
        }
        for name, backend in {"keras": self.keras, **backends}.items():
            translator = self.translator(backend)
            latency[name] = timed(lambda t=translator: t.translate(["i'm home ."]), 5)
        num_pairs = len(self.data.test_pairs)
        if self.quality_sentences:
            num_pairs = pairs_for_sources(self.data.test_pairs, self.quality_sentences)
        num_sources = len(group_pairs(self.data.test_pairs, num_pairs)[0])
        quality = {
            "metric": "sacrebleu corpus BLEU, each pair against its own reference",
            "key": "bleu",  # metrics.json's name for it
            "split": "test",
            "pairs": num_pairs,
            "sources": num_sources,
            "whole_split": num_pairs == len(self.data.test_pairs),
            "scope": f"{num_pairs:,} pairs ({num_sources:,} distinct sources, "
            + (
                "the whole split)"
                if num_pairs == len(self.data.test_pairs)
                else "the split's first ones)"
            ),
            "beam_width": self.beam_width,
            "keras": self.bleu(self.keras, num_pairs),
        }
        for entry in files:
            backend = self.litert_backend(folder, entry, "interpreter")
            quality[entry["file"]] = self.bleu(backend, num_pairs)
            entry["ops"] = op_names((folder / entry["file"]).read_bytes())
            if entry["quantization"] != "none":
                translator = self.translator(backend)
                latency[f"tflite/{entry['quantization']}"] = timed(
                    lambda t=translator: t.translate(["i'm home ."]), 5
                )
        return {"parity": parity, "latency": latency, "quality": quality}
