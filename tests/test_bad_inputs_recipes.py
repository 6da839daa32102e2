"""Bad recipe values that used to fail only after training, or at the start with a raw
Keras message and no recipe path (issue 24, "every recipe value checked before work
starts"): each is now one line that starts with the value's path, exit 2, before any
data is read or any folder made. The machinery is in ``bad_inputs.py``."""

import pytest
from bad_inputs import RUN, Case, check_case, recipe_text

LM, TRANSLATOR, SINE = "lm-gru", "seq2seq-gru", "ar-mlp-sine"
ATTENTION = "seq2seq-attn"  # a deep_rnn encoder and additive attention


def refused(id, recipe, settings, says, files=None):
    """``zoo run recipe RECIPE --set ...`` refused with a line that starts with ``says``."""
    args = [*RUN, recipe]
    for setting in settings:
        args += ["--set", setting]
    return Case(id, args, f"zoo: error: {says}", files=files or {})


def refused_file(id, says, **changes):
    """A recipe file (``recipe_text`` with ``changes``) refused in the same way."""
    return refused(id, "{tmp}/r.yaml", [], says, files={"r.yaml": recipe_text(**changes)})


CASES = [
    # ------------------------------------------------ once failing after training
    refused(
        "horizon-zero",
        SINE,
        ["evaluate.horizons=[1, 0]"],
        "evaluate.horizons[1]: must be at least 1, got 0",
    ),
    refused(
        "horizon-past-the-series",
        SINE,
        ["evaluate.horizons=[1, 5000]"],
        "evaluate.horizons[1]: must be at most 1000, got 5000",
    ),
    refused(
        "horizon-past-the-held-out-part",
        SINE,
        ["evaluate.horizons=[4, 500]"],
        "evaluate.horizons[1]: must be at most data.num_points - data.tau - data.num_train (396)",
    ),
    refused("horizons-none", SINE, ["evaluate.horizons=[]"], "evaluate.horizons: needs at least 1"),
    refused(
        "horizon-not-a-number",
        SINE,
        ["evaluate.horizons=[one]"],
        "evaluate.horizons[0]: expected an integer, got 'one'",
    ),
    refused(
        "decode-max-length-huge",
        TRANSLATOR,
        ["decode.max_length=1000000000"],
        "decode.max_length: must be at most 10000, got 1000000000",
    ),
    refused(
        "beam-history-too-long",
        TRANSLATOR,
        ["decode.beam_width=100", "decode.max_length=5000"],
        "decode.beam_width: 100 × decode.max_length 5,000 is 500,000 tokens of beam history",
    ),
    refused(
        "export-beam-too-wide",
        TRANSLATOR,
        ["export.beam_width=1000"],
        "export.beam_width: must be at most 100, got 1000",
    ),
    refused(
        "length-penalty-huge",
        TRANSLATOR,
        ["decode.length_penalty_alpha=1e6"],
        "decode.length_penalty_alpha: must be at most 10.0",
    ),
    refused(
        "lm-bidirectional-cannot-generate",
        LM,
        ["model.layers[0]={name: bidirectional, units: 8}"],
        "model.layers[0].name: expected a sequence layer that runs step by step",
    ),
    # ------------------------------------------------ once a raw Keras message
    refused_file(
        "units-zero",
        "model.layers[0].units: must be at least 1, got 0",
        model__layers=[{"name": "gru", "units": 0}],
    ),
    refused(
        "units-billion",
        LM,
        ["model.layers[0].units=1000000000"],
        "model.layers[0].units: must be at most 8192, got 1000000000",
    ),
    refused(
        "lm-cell-instead-of-layer",
        LM,
        ["model.layers[0].name=gru_cell"],
        "model.layers[0].name: expected a sequence layer that runs step by step",
    ),
    refused(
        "sine-sequence-layer",
        SINE,
        ["model.layers[0]={name: gru, units: 8}"],
        "model.layers[0].name: expected a layer of feature vectors (mlp)",
    ),
    refused(
        "mlp-no-hidden-layer",
        SINE,
        ["model.layers[0].hidden_units=[]"],
        "model.layers[0].hidden_units: needs at least 1",
    ),
    refused(
        "layer-activation-unknown",
        LM,
        ["model.layers[0].activation=tanhh"],
        "model.layers[0]: Could not interpret activation function identifier: tanhh",
    ),
    refused(
        "encoder-layers-billion",
        ATTENTION,
        ["model.encoder.num_layers=1000000000"],
        "model.encoder.num_layers: must be at most 64",
    ),
    refused(
        "attention-not-attention",
        ATTENTION,
        ["model.attention={name: gru, units: 8}"],
        "model.attention.name: expected an attention layer (additive_attention), got 'gru'",
    ),
    # ------------------------------------------------ dropout 1.5 wherever it can be set
    refused_file(
        "dropout-lm-output", "model.dropout: must be below 1.0, got 1.5", model__dropout=1.5
    ),
    refused(
        "dropout-layer",
        LM,
        ["model.layers[0].dropout=1.5"],
        "model.layers[0].dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-weight",
        LM,
        ["model.layers[0].weight_dropout=1.5"],
        "model.layers[0].weight_dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-decoder",
        TRANSLATOR,
        ["model.decoder.dropout=1.5"],
        "model.decoder.dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-embedding",
        TRANSLATOR,
        ["model.embedding_dropout=1.5"],
        "model.embedding_dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-encoder-between-layers",
        ATTENTION,
        ["model.encoder.dropout=1.5"],
        "model.encoder.dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-encoder-inner-layers",
        ATTENTION,
        ["model.encoder.layer_kwargs={recurrent_dropout: 1.5}"],
        "model.encoder.layer_kwargs.recurrent_dropout: must be below 1.0, got 1.5",
    ),
    refused(
        "dropout-attention",
        ATTENTION,
        ["model.attention.dropout=1.5"],
        "model.attention.dropout: must be below 1.0, got 1.5",
    ),
    # ------------------------------------------------ data and training sizes
    refused(
        "batch-size-huge",
        LM,
        ["data.batch_size=100000000"],
        "data.batch_size: must be at most 16384, got 100000000",
    ),
    refused(
        "batch-tokens-too-many",
        LM,
        ["data.batch_size=16384", "data.num_steps=1000"],
        "data.batch_size: 16,384 × data.num_steps 1,000 is 16,384,000 tokens a batch",
    ),
    refused(
        "num-steps-zero", LM, ["data.num_steps=0"], "data.num_steps: must be at least 1, got 0"
    ),
    refused(
        "translator-num-steps-huge",
        TRANSLATOR,
        ["data.num_steps=100000"],
        "data.num_steps: must be at most 1000, got 100000",
    ),
    refused(
        "subword-vocabulary-huge",
        TRANSLATOR,
        ["data.subword_vocab_size=1000000000"],
        "data.subword_vocab_size: must be at most 1000000",
    ),
    refused(
        "sine-tau-too-long",
        SINE,
        ["data.tau=999"],
        "data.tau: must be at most data.num_points - 2 (998)",
    ),
    refused("sine-noise-negative", SINE, ["data.noise_std=-1"], "data.noise_std: must be at least"),
    refused_file(
        "epochs-a-million", "train.epochs: must be at most 10000, got 1000000", train__epochs=10**6
    ),
    refused_file(
        "learning-rate-huge",
        "train.learning_rate: must be at most 1000.0",
        train__learning_rate=2e12,
    ),
    refused_file(
        "weight-decay-negative",
        "train.weight_decay: must be at least 0.0, got -0.01",
        train__weight_decay=-0.01,
    ),
    refused(
        "connect-timeout-a-year",
        LM,
        ["train.connect_timeout=31536000"],
        "train.connect_timeout: must be at most 86400.0",
    ),
    refused(
        "pretrain-source-list-of-numbers",
        LM,
        ["pretrain.for_sources=[1]"],
        "pretrain.for_sources[0]: expected a string, got 1",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_recipe_value_is_one_line_at_its_path_before_any_work(
    case, trained_run, small_corpus, tmp_path, monkeypatch
):
    check_case(case, trained_run, small_corpus, tmp_path, monkeypatch)
