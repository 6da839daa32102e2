"""String signatures of a SavedModel, for TF Serving and any TensorFlow program: text in,
text out, with the cleaning, the vocabulary lookup and the decoding loop in the graph.

``generate(prefix, length, temperature)`` for a language model (temperature ≤ 0 is
greedy) and ``translate(sentences)`` for a translator (beam search as
``zoo.decoding.beam_search`` does it: the same hypotheses kept, the same score
(1 / L^α) log P, <unk> never chosen unless the recipe allows it).
"""

from __future__ import annotations

import tensorflow as tf

from zoo.text.formats import CLOSING_JOIN, OPENING_JOIN, SPLIT_PATTERN
from zoo.text.vocab import BOS, EOS, PAD, UNK

NEGATIVE_INFINITY = float("-inf")


class Lookup(tf.Module):
    """A vocabulary in the graph: tokens → ids (unknown → <unk>) and ids → tokens."""

    def __init__(self, vocab, name=None):
        super().__init__(name=name)
        tokens = list(vocab.idx_to_token)
        self.tokens = tf.constant(tokens)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tokens, tf.range(len(tokens), dtype=tf.int32)),
            default_value=vocab[UNK],
        )

    def ids(self, tokens):
        return self.table.lookup(tokens)


def clean_time_machine(text):
    """``zoo.text.clean_time_machine`` in the graph: runs of non-letters → one space,
    then lower case."""
    return tf.strings.lower(tf.strings.regex_replace(text, r"[^\pL]+", " "), encoding="utf-8")


def clean_translation(text):
    """``zoo.text.clean_translation`` in the graph. RE2 has no look-behind, so the space
    before ``, . ! ?`` is put by a pattern that consumes the previous character, twice
    (a second pass reaches marks that follow a mark the first pass consumed)."""
    text = tf.strings.regex_replace(text, "[\u00a0\u202f]", " ")
    text = tf.strings.lower(text, encoding="utf-8")
    for _ in range(2):
        text = tf.strings.regex_replace(text, r"([^ ])([,.!?])", r"\1 \2")
    return text


def clean_lines(text, text_format):
    """A language model's ``preprocess`` lower or none in the graph, with line ends as
    ``line_ends: space`` reads them: one space between lines."""
    text = tf.strings.regex_replace(text, "\r\n?", "\n")
    if text_format.preprocess == "lower":
        text = tf.strings.lower(text, encoding="utf-8")
    if text_format.token_level == "char":
        return tf.strings.regex_replace(text, "\n", " ")
    return text


def clean_sentences(text, text_format):
    """A translator's cleaning (``zoo.text.formats.TranslationText.clean``) in the graph."""
    if text_format.preprocess == "chapter":
        return clean_translation(text)
    text = tf.strings.regex_replace(text, "[\u00a0\u202f]", " ")
    if text_format.preprocess == "lower":
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, SPLIT_PATTERN, r" \1 ")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def join_sentences(text, text_format):
    """``TranslationText.join``'s punctuation rules in the graph (words already joined
    by spaces)."""
    if text_format.preprocess == "chapter":
        return text
    text = tf.strings.regex_replace(text, OPENING_JOIN, r"\1")
    return tf.strings.regex_replace(text, CLOSING_JOIN, r"\1")


def in_graph(text_format) -> bool:
    """Whether the graph can split text as ``text_format`` does: not with nltk or
    subwords, nor with <eos> line ends."""
    return text_format.tokenizer is None and getattr(text_format, "line_ends", "space") == "space"


def generate_signature(model, vocab, text_format):
    """(function, input signature, lookup) of ``generate(prefix, length, temperature)``."""
    lookup = Lookup(vocab, name="vocab")
    token_level = text_format.token_level
    separator = "" if token_level == "char" else " "
    specs = [
        tf.TensorSpec([], tf.string, name="prefix"),
        tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"),
    ]

    def generate(prefix, length, temperature):
        if text_format.preprocess == "chapter":
            cleaned = clean_time_machine(prefix)
        else:
            cleaned = clean_lines(prefix, text_format)
        if token_level == "char":
            tokens = tf.strings.unicode_split(cleaned, "UTF-8")
        else:
            tokens = tf.strings.split(cleaned)
        ids = lookup.ids(tokens)
        tf.debugging.assert_positive(tf.size(ids), message="the prefix is empty after cleaning")
        states = [tf.zeros([1, size]) for size in model.state_sizes]

        def read(index, logits, states):
            logits, states = model.step(ids[index][None], states)
            return index + 1, logits, states

        logits = tf.zeros([1, model.vocab_size])
        _, logits, states = tf.while_loop(
            lambda index, *_: index < tf.size(ids), read, (0, logits, states)
        )

        def write(index, logits, states, generated):
            scaled = logits / tf.maximum(temperature, 1e-6)
            sampled = tf.random.categorical(scaled, 1, dtype=tf.int32)[:, 0]
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            token = tf.where(temperature > 0, sampled, greedy)
            logits, states = model.step(token, states)
            return index + 1, logits, states, generated.write(index, token[0])

        generated = tf.TensorArray(tf.int32, size=length)
        *_, generated = tf.while_loop(
            lambda index, *_: index < length, write, (0, logits, states, generated)
        )
        words = tf.gather(lookup.tokens, generated.stack())
        return {"text": cleaned + tf.strings.reduce_join(words, separator=separator)}

    return generate, specs, lookup


def graph_beam_search(step, state, batch_size, settings: dict):
    """``zoo.decoding.beam_search`` with TensorFlow ops in one ``tf.while_loop``:
    → (tokens [batch, max_length], lengths [batch])."""
    beam, max_length = settings["beam_width"], settings["max_length"]
    eos, alpha = settings["eos_id"], settings["length_penalty_alpha"]
    rows = batch_size * beam
    first_row = tf.range(batch_size) * beam
    state = {name: tf.repeat(value, beam, axis=0) for name, value in state.items()}
    tokens = tf.fill([rows], settings["bos_id"])
    start = tf.concat([[0.0], tf.fill([beam - 1], NEGATIVE_INFINITY)], axis=0)
    log_probs = tf.tile(tf.cast(start, tf.float64), [batch_size])
    finished = tf.zeros([rows], tf.bool)
    history = tf.fill([rows, max_length], eos)
    best = (
        tf.fill([batch_size, max_length], eos),
        tf.zeros([batch_size], tf.int32),
        tf.fill([batch_size], tf.constant(NEGATIVE_INFINITY, tf.float64)),
    )

    def offer(best, offered, history, length, log_probs):
        best_tokens, best_lengths, best_scores = best
        penalty = tf.pow(tf.cast(length, tf.float64), alpha)
        scores = tf.where(offered, log_probs / penalty, NEGATIVE_INFINITY)
        scores = tf.reshape(scores, [batch_size, beam])
        chosen = tf.argmax(scores, axis=1, output_type=tf.int32)
        chosen_scores = tf.gather(scores, chosen, batch_dims=1)
        better = chosen_scores > best_scores
        chosen_rows = tf.gather(history, first_row + chosen)
        return (
            tf.where(better[:, None], chosen_rows, best_tokens),
            tf.where(better, length, best_lengths),
            tf.where(better, chosen_scores, best_scores),
        )

    def body(t, tokens, log_probs, finished, history, state, best):
        step_log_probs, state = step(tokens, state)
        vocab_size = tf.shape(step_log_probs)[1]
        only_eos = tf.one_hot(eos, vocab_size, on_value=0.0, off_value=NEGATIVE_INFINITY)
        extensions = tf.where(finished[:, None], only_eos[None, :], step_log_probs)
        top = tf.math.top_k(extensions, k=beam)
        candidates = log_probs[:, None] + tf.cast(top.values, tf.float64)
        candidates = tf.reshape(candidates, [batch_size, beam * beam])
        candidate_tokens = tf.reshape(top.indices, [batch_size, beam * beam])
        kept = tf.math.top_k(candidates, k=beam)
        parents = tf.reshape(first_row[:, None] + kept.indices // beam, [-1])
        tokens = tf.reshape(tf.gather(candidate_tokens, kept.indices, batch_dims=1), [-1])
        log_probs = tf.reshape(kept.values, [-1])
        was_finished = tf.gather(finished, parents)
        finished = was_finished | tf.equal(tokens, eos)
        here = tf.one_hot(t, max_length, on_value=True, off_value=False, dtype=tf.bool)
        history = tf.where(here[None, :], tokens[:, None], tf.gather(history, parents))
        state = {name: tf.gather(value, parents) for name, value in state.items()}
        newly = finished & ~was_finished & tf.math.is_finite(log_probs)
        best = offer(best, newly, history, t + 1, log_probs)
        return t + 1, tokens, log_probs, finished, history, state, best

    def alive(t, tokens, log_probs, finished, *_):
        going = tf.reduce_any(~finished & tf.math.is_finite(log_probs))
        return (t < max_length) & going

    _, _, log_probs, finished, history, _, best = tf.while_loop(
        alive, body, (0, tokens, log_probs, finished, history, state, best)
    )
    still_alive = ~finished & tf.math.is_finite(log_probs)
    best_tokens, best_lengths, _ = offer(best, still_alive, history, max_length, log_probs)
    return best_tokens, best_lengths


def translate_signature(model, src_vocab, tgt_vocab, recipe: dict, text_format):
    """(function, input signature, lookups) of ``translate(sentences)``."""
    source_lookup, target_lookup = Lookup(src_vocab, "src_vocab"), Lookup(tgt_vocab, "tgt_vocab")
    num_steps = recipe["data"]["num_steps"]
    decode = recipe["decode"]
    settings = {
        "beam_width": min(decode["beam_width"], len(tgt_vocab)),
        "max_length": decode["max_length"],
        "length_penalty_alpha": float(decode["length_penalty_alpha"]),
        "bos_id": tgt_vocab[BOS],
        "eos_id": tgt_vocab[EOS],
    }
    never = [] if decode.get("allow_unk") else [tgt_vocab[UNK]]
    penalty = tf.constant(
        [NEGATIVE_INFINITY if index in never else 0.0 for index in range(len(tgt_vocab))]
    )
    hidden = tf.constant([tgt_vocab[token] for token in (EOS, PAD, BOS)])

    def translate(sentences):
        words = tf.strings.split(clean_sentences(sentences, text_format))[:, : num_steps - 1]
        ids = tf.ragged.map_flat_values(source_lookup.ids, words)
        eos = tf.fill([tf.shape(sentences)[0], 1], src_vocab[EOS])
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        valid_len = tf.cast(ids.row_lengths(), tf.int32)
        source = ids.to_tensor(default_value=src_vocab[PAD], shape=[None, num_steps])
        state = model.encode(source, valid_len)

        def step(tokens, state):
            log_probs, states = model.decode_step(tokens, state)
            new = {f"state_{i}": s for i, s in enumerate(states)}
            return log_probs + penalty, {**state, **new}

        tokens, lengths = graph_beam_search(step, state, tf.shape(sentences)[0], settings)
        keep = tf.sequence_mask(lengths, settings["max_length"])
        keep &= tf.reduce_all(tokens[:, :, None] != hidden[None, None, :], axis=-1)
        words = tf.ragged.boolean_mask(tf.gather(target_lookup.tokens, tokens), keep)
        joined = tf.strings.reduce_join(words, axis=1, separator=" ")
        return {"translations": join_sentences(joined, text_format)}

    specs = [tf.TensorSpec([None], tf.string, name="sentences")]
    return translate, specs, (source_lookup, target_lookup)
