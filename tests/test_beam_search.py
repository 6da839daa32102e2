"""Beam search against brute force, greedy search and hand-built models with a known answer."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from zoo.decoding import beam_search, greedy_search

VOCAB, EOS, BOS = 4, 3, 4  # output tokens 0, 1, 2 and <eos> = 3; <bos> = 4 is only an input
A, B, C = 0, 1, 2


class ToyModel:
    """A translator stand-in whose next-token distribution depends on the whole prefix:

        log P(y_t | y_<t, sentence s) = log_softmax(transition[y_{t-1}] + count_bias[#1s in y_<t]
                                                    + context[s])

    Its state is nested, {"context": tf tensor [n, vocab], "counts": (numpy [n],)}, so a
    search that reorders the state wrongly scores a hypothesis with another one's count
    or another sentence's context.
    """

    def __init__(self, transition, count_bias, contexts):
        self.transition = np.asarray(transition, np.float64)  # (vocab + 1, vocab): <bos> last
        self.count_bias = np.asarray(count_bias, np.float64)  # (max_length + 1, vocab)
        self.contexts = np.asarray(contexts, np.float64)  # (sentences, vocab)
        self.inputs = []  # the tokens of each step_fn call

    @classmethod
    def random(cls, seed, num_sentences=3, max_length=8):
        rng = np.random.default_rng(seed)
        return cls(
            1.5 * rng.normal(size=(VOCAB + 1, VOCAB)),
            1.5 * rng.normal(size=(max_length + 1, VOCAB)),
            rng.normal(size=(num_sentences, VOCAB)),
        )

    @classmethod
    def markov(cls, probabilities):
        """P(y_t | y_{t-1}) from a table {previous token: [P(a), P(b), P(c), P(<eos>)]}."""
        transition = np.log(
            np.asarray([probabilities[token] for token in (A, B, C, EOS, BOS)]) + 1e-12
        )
        return cls(transition, np.zeros((16, VOCAB)), np.zeros((1, VOCAB)))

    def next_log_probs(self, last_tokens, counts, contexts):
        logits = self.transition[last_tokens] + self.count_bias[counts] + contexts
        logits -= logits.max(axis=-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))

    def initial_state(self, sentences):
        return {
            "context": tf.constant(self.contexts[sentences]),
            "counts": (np.zeros(len(sentences), np.int64),),
        }

    def step(self, tokens, state):
        self.inputs.append(tokens.tolist())
        (counts,) = state["counts"]
        counts = counts + (tokens == B)
        log_probs = self.next_log_probs(tokens, counts, np.asarray(state["context"]))
        return tf.constant(log_probs), {"context": state["context"], "counts": (counts,)}

    def sequence_log_prob(self, sentence, sequence):
        """log P(y_1, ..., y_L | sentence), scored token by token from the explicit prefix."""
        total, last, count = 0.0, BOS, 0
        for token in sequence:
            count += last == B
            total += self.next_log_probs(
                np.array([last]), np.array([count]), self.contexts[sentence][None]
            )[0, token]
            last = token
        return total


def search(model, sentences=(0,), search_fn=beam_search, max_length=4, **options):
    sentences = list(sentences)
    return search_fn(
        model.step,
        model.initial_state(sentences),
        batch_size=len(sentences),
        bos_id=BOS,
        eos_id=EOS,
        max_length=max_length,
        **options,
    )


def hypothesis(result, row):
    return tuple(int(token) for token in result.tokens[row, : result.lengths[row]])


def brute_force(model, sentence, max_length, length_penalty_alpha):
    """The complete hypothesis of highest log P / L^α, over every one up to max_length:
    those ending in their first <eos>, and those of max_length without <eos>."""
    best_score, best_sequence = -np.inf, None
    for length in range(1, max_length + 1):
        for prefix in itertools.product((A, B, C), repeat=length - 1):
            endings = (A, B, C, EOS) if length == max_length else (EOS,)
            for sequence in (prefix + (ending,) for ending in endings):
                score = model.sequence_log_prob(sentence, sequence) / length**length_penalty_alpha
                if score > best_score:
                    best_score, best_sequence = score, sequence
    return best_sequence, best_score


# --------------------------------------------------------------------------- against brute force


@pytest.mark.parametrize("length_penalty_alpha", [0.0, 0.75, 1.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_beam_wide_enough_to_keep_everything_finds_the_brute_force_best(
    seed, length_penalty_alpha
):
    # 64 ≥ the 40 hypotheses there can be after three steps with three tokens and <eos>.
    model = ToyModel.random(seed)
    result = search(
        model,
        sentences=(0, 1, 2),
        max_length=4,
        beam_width=64,
        length_penalty_alpha=length_penalty_alpha,
    )
    for sentence in range(3):
        expected, expected_score = brute_force(model, sentence, 4, length_penalty_alpha)
        assert hypothesis(result, sentence) == expected
        assert result.scores[sentence] == pytest.approx(expected_score)
        length = len(expected)
        assert result.log_probs[sentence] == pytest.approx(
            expected_score * length**length_penalty_alpha
        )
        assert np.all(result.tokens[sentence, length:] == EOS)  # padded with <eos>


def test_beam_search_finds_what_greedy_search_misses():
    model = ToyModel.markov(
        {
            BOS: [0.5, 0.4, 0.0, 0.1],
            A: [0.22, 0.22, 0.21, 0.35],  # a is likelier first, but nothing good follows it
            B: [0.1 / 3, 0.1 / 3, 0.1 / 3, 0.9],
            C: [0.25] * 4,
            EOS: [0.25] * 4,
        }
    )
    assert hypothesis(search(model, search_fn=greedy_search), 0) == (A, EOS)  # P = 0.175
    assert hypothesis(search(model, beam_width=2), 0) == (B, EOS)  # P = 0.36
    assert brute_force(model, 0, 4, 0.75)[0] == (B, EOS)


# --------------------------------------------------------------------------- greedy


@pytest.mark.parametrize("length_penalty_alpha", [0.0, 0.75, 2.0])
@pytest.mark.parametrize("seed", [3, 4])
def test_beam_width_one_is_greedy_search(seed, length_penalty_alpha):
    model = ToyModel.random(seed, num_sentences=5)
    sentences = range(5)
    greedy = search(model, sentences, search_fn=greedy_search, max_length=8)
    beam = search(
        model, sentences, max_length=8, beam_width=1, length_penalty_alpha=length_penalty_alpha
    )
    np.testing.assert_array_equal(beam.tokens, greedy.tokens)
    np.testing.assert_array_equal(beam.lengths, greedy.lengths)
    np.testing.assert_array_equal(beam.log_probs, greedy.log_probs)
    assert len(set(greedy.lengths)) > 1, "the toy model should end sentences at different steps"


def test_greedy_search_picks_the_argmax_and_stops_at_eos():
    model = ToyModel.markov(
        {
            BOS: [0.6, 0.3, 0.1, 0.0],
            A: [0.0, 0.7, 0.0, 0.3],
            B: [0.0, 0.0, 0.1, 0.9],
            C: [0.25] * 4,
            EOS: [0.25] * 4,
        }
    )
    result = search(model, search_fn=greedy_search, max_length=5)
    assert hypothesis(result, 0) == (A, B, EOS)
    assert result.tokens[0].tolist() == [A, B, EOS, EOS, EOS]
    assert result.log_probs[0] == pytest.approx(np.log(0.6 * 0.7 * 0.9))
    assert model.inputs == [[BOS], [A], [B]]  # stopped once the only sentence emitted <eos>


# --------------------------------------------------------------------------- the length penalty


LONG_OR_SHORT = {
    BOS: [0.45, 0.03, 0.02, 0.5],  # <eos> at once: P = 0.5
    A: [0.01, 0.97, 0.01, 0.01],  # or a b c <eos>: P = 0.45 · 0.97³ ≈ 0.41
    B: [0.01, 0.01, 0.97, 0.01],
    C: [0.01, 0.01, 0.01, 0.97],
    EOS: [0.25] * 4,
}


@pytest.mark.parametrize(
    ("length_penalty_alpha", "expected"),
    [(0.0, (EOS,)), (0.75, (A, B, C, EOS)), (1.0, (A, B, C, EOS))],
)
@pytest.mark.parametrize("beam_width", [2, 4])
def test_the_length_penalty_decides_between_short_and_long(
    beam_width, length_penalty_alpha, expected
):
    """log P prefers the short hypothesis (-0.69 against -0.89); divided by L^α with α = 1,
    the long one wins (-0.69 against -0.22)."""
    model = ToyModel.markov(LONG_OR_SHORT)
    result = search(
        model, max_length=6, beam_width=beam_width, length_penalty_alpha=length_penalty_alpha
    )
    assert hypothesis(result, 0) == expected
    assert brute_force(model, 0, 4, length_penalty_alpha)[0] == expected
    assert result.lengths[0] == len(expected)


def test_finished_hypotheses_are_frozen_and_the_search_stops_when_all_are():
    model = ToyModel.markov(LONG_OR_SHORT)
    search(model, max_length=6, beam_width=2)
    # Row 0 finished at the first step and is fed <eos> from then on; row 1 grows a b c,
    # and once it emits <eos> too nothing is left to extend.
    assert model.inputs == [[BOS, BOS], [EOS, A], [EOS, B], [EOS, C]]


def test_a_finished_hypothesis_that_loses_its_beam_slot_can_still_win():
    """<eos> (P = 0.3) finishes first but a a and a b (0.315 each) take both slots at step
    2; everything that follows them ends far below 0.3, so <eos> must have been kept aside."""
    model = ToyModel.markov(
        {
            BOS: [0.7, 0.0, 0.0, 0.3],
            A: [0.45, 0.45, 0.0, 0.1],
            B: [0.25] * 4,
            C: [0.25] * 4,
            EOS: [0.25] * 4,
        }
    )
    result = search(model, max_length=3, beam_width=2, length_penalty_alpha=0.0)
    assert hypothesis(result, 0) == (EOS,)
    assert result.log_probs[0] == pytest.approx(np.log(0.3))
    # Still alive at max_length, the best of the beam is a a a (or a a b) at P ≈ 0.14.
    assert brute_force(model, 0, 3, 0.0)[0] == (EOS,)


# --------------------------------------------------------------------------- batching and state


def test_a_batch_gives_each_sentence_its_own_result():
    model = ToyModel.random(5)
    options = {"max_length": 6, "beam_width": 4, "length_penalty_alpha": 0.75}
    batched = search(model, sentences=(0, 1, 2), **options)
    for sentence in range(3):
        alone = search(model, sentences=(sentence,), **options)
        np.testing.assert_array_equal(batched.tokens[sentence], alone.tokens[0])
        assert batched.lengths[sentence] == alone.lengths[0]
        assert batched.scores[sentence] == pytest.approx(alone.scores[0], abs=1e-12)
    assert len({hypothesis(batched, sentence) for sentence in range(3)}) > 1


@pytest.mark.parametrize("beam_width", [1, 3, 5])
def test_the_state_follows_the_hypotheses_it_belongs_to(beam_width):
    """The reported log P of each result is the model's log P of its tokens, computed from
    the explicit prefix: a state row left with another beam gives another count or context."""
    model = ToyModel.random(6)
    model.count_bias *= 3.0  # make the count matter
    result = search(model, sentences=(0, 1, 2), max_length=7, beam_width=beam_width)
    for sentence in range(3):
        expected = model.sequence_log_prob(sentence, hypothesis(result, sentence))
        assert result.log_probs[sentence] == pytest.approx(expected, abs=1e-9)
    # One call per time step, each for every beam of every sentence at once.
    assert len(model.inputs) <= 7
    assert {len(tokens) for tokens in model.inputs} == {3 * beam_width}


def test_beam_width_and_max_length_must_be_positive():
    model = ToyModel.random(0)
    with pytest.raises(ValueError, match="beam_width and max_length"):
        search(model, beam_width=0)
    with pytest.raises(ValueError, match="beam_width and max_length"):
        search(model, max_length=0)


def test_the_numpy_top_k_orders_like_tensorflow():
    """Arrays (a TFLite backend) and tensors (Keras) choose the same hypotheses: the k
    largest values, ties to the lower index, -inf included."""
    import tensorflow as tf

    from zoo.decoding.beam_search import _top_k

    rng = np.random.default_rng(0)
    for _ in range(100):
        values = rng.integers(0, 4, (3, 40)).astype(np.float32)  # many ties
        values[rng.random((3, 40)) < 0.4] = -np.inf
        k = int(rng.integers(1, 6))
        expected = tf.math.top_k(tf.constant(values), k)
        got_values, got_indices = _top_k(values, k)
        np.testing.assert_array_equal(got_indices, expected.indices.numpy())
        np.testing.assert_array_equal(got_values, expected.values.numpy())
