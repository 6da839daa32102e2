"""The "int8-embeddings" TFLite quantization (zoo.export.tflite.int8_embeddings): the
embedding tables are int8 rows with per-row scales read by GATHER, builtin ops only; a
tied output layer reads the same bytes; the files stay within the quantization's error of
Keras, and are smaller than the dynamic-range ones by what the tables save."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_translation import PAIRS

from zoo.export.language_model import LanguageModelExport, step_through
from zoo.export.signatures import language_model_signatures
from zoo.export.tflite import (
    INT8_EMBEDDINGS,
    check_builtin_only,
    convert,
    int8_embeddings,
    int8_rows,
)
from zoo.text.vocab import BOS

WORDS, WIDTH = 1000, 32  # a tied table of 32,000 elements: the converter quantizes it too


def constants(flatbuffer: bytes) -> dict:
    """Each constant buffer of a TFLite file that an op reads: {buffer index: (TensorType
    name, shape, the ops reading it, its bytes)}."""
    from ai_edge_litert import schema_py_generated as schema

    types = {code: name for name, code in vars(schema.TensorType).items() if name.isupper()}
    ops = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    found = {}
    for graph in (model.Subgraphs(index) for index in range(model.SubgraphsLength())):
        for operator in (graph.Operators(index) for index in range(graph.OperatorsLength())):
            code = model.OperatorCodes(operator.OpcodeIndex())
            name = ops[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            for position in range(operator.InputsLength()):
                if operator.Inputs(position) < 0:
                    continue
                tensor = graph.Tensors(operator.Inputs(position))
                data = model.Buffers(tensor.Buffer()).DataAsNumpy()
                if isinstance(data, int):  # no data: not a constant
                    continue
                entry = found.setdefault(
                    tensor.Buffer(),
                    (types[tensor.Type()], tuple(tensor.ShapeAsNumpy()), set(), data.tobytes()),
                )
                entry[2].add(name)
    return found


def tables(flatbuffer: bytes, shape) -> list:
    """The constants of ``shape`` that GATHER reads: [(type, ops reading them, bytes)]."""
    return [
        (kind, readers, data)
        for kind, found_shape, readers, data in constants(flatbuffer).values()
        if found_shape == tuple(shape) and "GATHER" in readers
    ]


@contextlib.contextmanager
def dequantized(layers):
    """The Keras model with each of ``layers``' embedding replaced by its int8 rows
    times their scales, as the file holds it: the quantization's own effect on Keras."""
    saved = [np.array(layer.embeddings) for layer in layers]
    try:
        for layer in layers:
            q, steps, unit = int8_rows(layer.embeddings)
            layer.embeddings.assign(q * (steps.astype(np.float32) * unit)[:, None])
        yield
    finally:
        for layer, table in zip(layers, saved, strict=True):
            layer.embeddings.assign(table)


def test_int8_rows_keep_every_element_within_half_its_row_scale():
    rng = np.random.default_rng(0)
    # rows of very different sizes (a rare word's row is small) and an all-zero row
    table = rng.normal(size=(50, 7)) * rng.uniform(1e-4, 3.0, size=(50, 1))
    table[3] = 0.0
    q, steps, unit = int8_rows(table)
    assert q.dtype == np.int8 and steps.dtype == np.int32 and unit.dtype == np.float32
    scale = steps.astype(np.float32) * unit
    error = np.abs(table.astype(np.float32) - q * scale[:, None])
    assert np.all(error <= scale[:, None] / 2 * (1 + 1e-5))
    # each row uses the whole int8 range (its largest |value| at ±127), not a shared one
    assert np.all(np.abs(q).max(axis=1)[np.arange(50) != 3] == 127)
    assert np.all(q[3] == 0) and np.abs(q).max() <= 127
    q, steps, unit = int8_rows(np.zeros((2, 3)))  # a table of zeros: zeros, finite scales
    assert not q.any() and np.all(steps * unit > 0)


def test_without_the_quantization_the_model_traces_its_float_tables_again():
    from zoo.models.language_model import LanguageModel

    model = tied_language_model(LanguageModel)
    with int8_embeddings([model.embedding], [model]):
        assert "call" in vars(model.embedding) and "logits" in vars(model)
    assert "call" not in vars(model.embedding) and "logits" not in vars(model)


def tied_language_model(model_class):
    model = model_class(
        WORDS,
        [{"name": "gru", "units": WIDTH}],
        embedding_dim=WIDTH,
        embedding_initializer="unit_normal",  # PyTorch's, as word-level recipes start
        tie_embeddings=True,
    )
    model(np.zeros((1, 2), np.int32))
    model.head_bias.assign(np.random.default_rng(1).normal(size=WORDS).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def tied_export(tmp_path_factory):
    """A word-level language model whose output layer is its embedding (untrained: what
    is checked is the arithmetic), exported float, dynamic and int8-embeddings:
    (exporter, folder, {quantization: file bytes})."""
    from zoo.models.language_model import LanguageModel
    from zoo.recipe import validate

    recipe = validate(
        {
            "name": "tied",
            "task": "language_model",
            "data": {"token_level": "word"},
            "model": {
                "embedding_dim": WIDTH,
                "tie_embeddings": True,
                "layers": [{"name": "gru", "units": WIDTH}],
            },
        }
    )
    folder = tmp_path_factory.mktemp("tied")
    exporter = LanguageModelExport(
        tied_language_model(LanguageModel), recipe, folder, SimpleNamespace(vocab=None)
    )
    files = {}
    for quantization in ("dynamic", INT8_EMBEDDINGS):
        files[quantization] = exporter.convert(quantization)
        (folder / f"{quantization}.tflite").write_bytes(files[quantization])
    return exporter, folder, files


def test_a_tied_table_is_one_int8_buffer_read_by_gather_and_the_output_layer(tied_export):
    exporter, _, files = tied_export
    flatbuffer = files[INT8_EMBEDDINGS]
    check_builtin_only(flatbuffer)
    q, _, _ = int8_rows(exporter.model.embedding.embeddings)
    [(kind, readers, data)] = tables(flatbuffer, (WORDS, WIDTH))
    assert kind == "INT8" and readers == {"GATHER", "FULLY_CONNECTED"}
    assert data == q.tobytes()  # the rows int8_rows makes, |error| <= scale / 2
    # the dynamic-range file holds the table twice: GATHER's copy, one scale for the
    # whole table, and the output layer's, one per row
    assert [kind for kind, *_ in tables(files["dynamic"], (WORDS, WIDTH))] == ["INT8"]
    copies = [
        entry
        for entry in constants(files["dynamic"]).values()
        if entry[0] == "INT8" and entry[1] == (WORDS, WIDTH)
    ]
    assert len(copies) == 2


def test_the_int8_file_is_smaller_than_the_dynamic_one_by_one_copy_of_the_table(tied_export):
    _, _, files = tied_export
    saved = len(files["dynamic"]) - len(files[INT8_EMBEDDINGS])
    # one int8 copy of the table less, and one int32 scale step per row more
    expected = WORDS * WIDTH - 4 * WORDS
    assert abs(saved - expected) < 0.05 * WORDS * WIDTH, (saved, expected)


def test_the_tied_int8_file_is_within_the_quantizations_error_of_keras(tied_export):
    exporter, folder, _ = tied_export
    model = exporter.model
    ids = np.random.default_rng(2).integers(0, WORDS, size=40)
    # the same int8 tables in a float file: it computes exactly Keras on q * scale
    with int8_embeddings([model.embedding], [model]):
        float_rows = convert(model, language_model_signatures(model, 1), "none")
    (folder / "float-rows.tflite").write_bytes(float_rows)
    assert [kind for kind, *_ in tables(float_rows, (WORDS, WIDTH))] == ["INT8"]

    def litert(name):
        backend = exporter.litert_backend(folder, {"file": f"{name}.tflite"}, "interpreter")
        return step_through(backend, ids)

    keras_logits = step_through(exporter.keras, ids)
    with dequantized([model.embedding]):
        on_int8_rows = step_through(exporter.keras, ids)
    np.testing.assert_allclose(litert("float-rows"), on_int8_rows, atol=1e-4)
    check_within_error(keras_logits, on_int8_rows, litert("dynamic"), litert(INT8_EMBEDDINGS))


def check_within_error(keras, on_int8_rows, dynamic, int8_embeddings_file):
    """The int8 file's error: the tables' (Keras on the int8 rows) plus the dynamic-range
    products' (the dynamic file's), with room for the two not to add exactly."""
    tables_error = np.abs(on_int8_rows - keras).max()
    products_error = np.abs(dynamic - keras).max()
    assert tables_error > 0
    assert np.abs(int8_embeddings_file - keras).max() <= 1.5 * (tables_error + products_error)


@pytest.fixture(scope="module")
def translator_export(translator_run, tmp_path_factory):
    """The session's tiny translator exported dynamic and int8-embeddings: (exporter,
    folder, {quantization: file bytes})."""
    from zoo.pipeline import load_run

    run, recipe, task, model = load_run(str(translator_run[0]))
    exporter = task.exporter(model, recipe, run.path, task.prepare(recipe, run, recipe["seed"]))
    folder = tmp_path_factory.mktemp("translator-int8")
    files = {}
    for quantization in ("dynamic", INT8_EMBEDDINGS):
        files[quantization] = exporter.convert(quantization)
        (folder / f"{quantization}.tflite").write_bytes(files[quantization])
    return exporter, folder, files


def test_a_translators_source_and_target_tables_are_int8_rows_read_by_gather(
    translator_export,
):
    exporter, _, files = translator_export
    flatbuffer = files[INT8_EMBEDDINGS]
    check_builtin_only(flatbuffer)
    for layer in (exporter.model.encoder.embedding, exporter.model.decoder.embedding):
        q, _, _ = int8_rows(layer.embeddings)
        [(kind, readers, data)] = tables(flatbuffer, q.shape)
        assert kind == "INT8" and readers == {"GATHER"} and data == q.tobytes()


def test_a_translators_int8_file_saves_what_its_tables_save(translator_export):
    exporter, _, files = translator_export
    expected = 0
    for layer in (exporter.model.encoder.embedding, exporter.model.decoder.embedding):
        rows, width = layer.embeddings.shape
        [(kind, _, _)] = tables(files["dynamic"], (rows, width))
        # the converter leaves a table this small float (3/4 of it saved) or stores it
        # int8 with one scale (nothing saved); the int8 file adds a scale step per row
        expected += (3 * rows * width if kind == "FLOAT32" else 0) - 4 * rows
    # the weights' bytes: in a model this tiny, the three ops a lookup adds (GATHER of
    # the scales, CAST, MUL) weigh as much in the file's graph as the tables save
    saved = weight_bytes(files["dynamic"]) - weight_bytes(files[INT8_EMBEDDINGS])
    assert expected > 0 and abs(saved - expected) <= 64, (saved, expected)


def weight_bytes(flatbuffer: bytes) -> int:
    """The bytes of a TFLite file's constants."""
    return sum(len(data) for *_, data in constants(flatbuffer).values())


def test_a_translators_int8_file_is_within_the_quantizations_error_of_keras(translator_export):
    exporter, folder, _ = translator_export
    model = exporter.model
    bos = exporter.tgt_vocab[BOS]
    fed = {source: [bos, *exporter.tgt_vocab[target.split()]][:5] for source, target in PAIRS}

    def traces(backend):
        return np.concatenate(
            [exporter.trace(backend, source, tokens) for source, tokens in fed.items()]
        )

    def litert(name):
        return traces(exporter.litert_backend(folder, {"file": f"{name}.tflite"}, "interpreter"))

    keras_log_probs = traces(exporter.keras)
    with dequantized([model.encoder.embedding, model.decoder.embedding]):
        on_int8_rows = traces(exporter.keras)
    check_within_error(keras_log_probs, on_int8_rows, litert("dynamic"), litert(INT8_EMBEDDINGS))


@pytest.mark.slow  # a whole export, measured: about 11 s on two quiet cores
def test_zoo_export_writes_and_measures_the_int8_embeddings_file(translator_run, tmp_path):
    from click.testing import CliRunner

    from zoo import load_export
    from zoo.cli.main import cli

    out = tmp_path / "export"
    args = ["export", str(translator_run[0]), "--format", "tflite", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--quantize", INT8_EMBEDDINGS])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    [entry] = [entry for entry in card["files"] if entry["quantization"] == INT8_EMBEDDINGS]
    assert entry["file"] == "model-int8-embeddings.tflite" and entry["size_of_float"] < 1
    assert "GATHER" in entry["ops"] and entry["file"] in card["quality"]
    assert f"tflite/{INT8_EMBEDDINGS}" in card["latency"]
    sources = [source for source, _ in PAIRS]
    float_file = load_export(out, "none").translate(sources)
    assert load_export(out, INT8_EMBEDDINGS).translate(sources) == float_file


@pytest.mark.slow
def test_the_shipped_translators_int8_file_is_smaller_at_the_same_bleu(tmp_path):
    """seq2seq-attn-fra-eng (tied target table, 16,950 x 256): beam 4 on the first 500
    test sources, LiteRT, int8-embeddings against the float file."""
    from zoo.pipeline import load_run
    from zoo.tasks.translation import pairs_for_sources

    run, recipe, task, model = load_run("seq2seq-attn-fra-eng")
    data = task.prepare(recipe, run, recipe["seed"])
    exporter = task.exporter(model, recipe, run.path, data, beam_width=4)
    sizes, bleu = {}, {}
    pairs = pairs_for_sources(data.test_pairs, 500)
    for quantization in ("none", "dynamic", INT8_EMBEDDINGS):
        path = tmp_path / f"{quantization}.tflite"
        path.write_bytes(exporter.convert(quantization))
        sizes[quantization] = path.stat().st_size
        backend = exporter.litert_backend(tmp_path, {"file": path.name}, "interpreter")
        bleu[quantization] = exporter.bleu(backend, pairs)
    rows, width = model.decoder.embedding.embeddings.shape
    # the tied table once, not twice (13.6 MB dynamic, 9.4 MB int8-embeddings)
    assert sizes["dynamic"] - sizes[INT8_EMBEDDINGS] > 0.9 * rows * width
    assert sizes[INT8_EMBEDDINGS] < 0.3 * sizes["none"]
    assert bleu[INT8_EMBEDDINGS] > bleu["none"] - 0.5, bleu
