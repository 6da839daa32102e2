"""Decoding speed of the shipped models: batched beam search with the translator and
greedy generation at batch 1 with the language model, from the Keras model and from the
export's TFLite file.

    python3 benchmarks/decoding.py [--sources 200] [--beams 4 8] [--tokens 400] [--repeats 3]

- ``translate``: sentences per second of beam search (each --beams width) over the first
  --sources distinct English sentences of fra-eng's test split, with
  ``seq2seq-attn-fra-eng`` (``zoo.load``): the Keras model decodes up to 256 sentences at
  once, every beam of every sentence in one ``decode_step`` call; the TFLite file runs
  one sentence at a time, its ``decode_step`` fixed at the beam width it was exported
  for (narrower beams are padded to it). No PyTorch counterpart: zoo's figures alone.
- ``generate``: tokens per second of greedy generation from "time traveller" with
  ``lm-lstm-timemachine``, through ``zoo.decoding.generate_tokens`` (one ``step`` per
  token), against the same loop over the same sizes in PyTorch (``nn.LSTM``, random
  weights: the speed does not depend on them) when PyTorch is installed.

One JSON line per measurement (``timing.py``): milliseconds per sentence or per
generated token over --repeats runs, after an untimed warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from timing import emit, summarize

TRANSLATOR = "seq2seq-attn-fra-eng"
LANGUAGE_MODEL = "lm-lstm-timemachine"
PREFIX = "time traveller"


def export_folder(name: str):
    """The export folder of a shipped model."""
    from zoo.pretrained.catalog import load_catalog

    return load_catalog().get(name).folder / "export"


def run_times(call, count: int, repeats: int) -> dict:
    """``summarize`` of the milliseconds per item (``count`` items a call) of ``repeats``
    calls."""
    milliseconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        milliseconds.append((time.perf_counter() - start) * 1000 / count)
    return summarize(milliseconds)


def generation_times(backend, prefix_ids, num_tokens: int, repeats: int) -> dict:
    """Milliseconds per token of greedy generation at batch 1, after a warm-up of 20
    tokens (tracing, delegates)."""
    from zoo.decoding import generate_tokens

    generate_tokens(backend, prefix_ids, 20, greedy=True)
    return run_times(
        lambda: generate_tokens(backend, prefix_ids, num_tokens, greedy=True), num_tokens, repeats
    )


def test_sources(num_sources: int) -> list[str]:
    """The first ``num_sources`` distinct English sentences of fra-eng's test split, as
    written, in the order ``zoo evaluate`` translates them."""
    from zoo.data.translation import load_translation_splits
    from zoo.tasks.translation import group_pairs, pairs_for_sources

    pairs = load_translation_splits("fra_eng")["test"]
    sources, _, _ = group_pairs(pairs, pairs_for_sources(pairs, num_sources))
    return sources


def translation_rows(sources: list[str], beams: list[int], repeats: int) -> list[dict]:
    import zoo

    model = zoo.load(TRANSLATOR)
    preset, vocabularies = model.preset, model.preset.vocabularies
    folder = export_folder(TRANSLATOR)
    translators = {
        "keras": preset.task.translator(
            model, vocabularies["src_vocab.txt"], vocabularies["tgt_vocab.txt"], preset.recipe
        ),
        tflite_name(folder): zoo.load(str(folder)),
    }
    rows = []
    for beam_width in beams:
        for backend, translator in translators.items():
            # Two small batches first: the second makes tf.function trace for any size.
            for warmup in (sources[:2], sources[:3]):
                translator.translate(warmup, beam_width=beam_width, warn=False)
            times = run_times(
                lambda translator=translator, beam_width=beam_width: translator.translate(
                    sources, beam_width=beam_width, warn=False
                ),
                len(sources),
                repeats,
            )
            rows.append(
                {
                    "benchmark": "decoding",
                    "case": f"{TRANSLATOR} beam {beam_width}, {len(sources)} test sources",
                    "framework": "zoo",
                    "backend": backend,
                    "beam_width": beam_width,
                    "sources": len(sources),
                    "sentences_at_once": translator.backend.preferred_batch,
                    **times,
                    "sentences_per_sec": round(1000 / times["ms_median"], 1),
                }
            )
    return rows


def tflite_name(folder) -> str:
    """``tflite dynamic``: the TFLite file ``zoo.load`` runs from an export folder."""
    from zoo.export.manifest import read_manifest, tflite_file

    return f"tflite {tflite_file(read_manifest(folder), folder)['quantization']}"


def generation_rows(num_tokens: int, repeats: int, torch_threads=None) -> list[dict]:
    import zoo

    model = zoo.load(LANGUAGE_MODEL)
    preset = model.preset
    folder = export_folder(LANGUAGE_MODEL)
    generators = {
        "keras": preset.task.generator(model, preset.vocabularies["vocab.txt"], preset.recipe),
        tflite_name(folder): zoo.load(str(folder)),
    }
    _, prefix_ids = generators["keras"].prefix_ids(PREFIX)
    case = f"{LANGUAGE_MODEL} greedy generation, batch 1"
    rows = []
    for backend, generator in generators.items():
        times = generation_times(generator.backend, prefix_ids, num_tokens, repeats)
        rows.append({"framework": "zoo", "backend": backend, **times})
    if importlib.util.find_spec("torch") is not None:
        import torch
        import torch_models

        if torch_threads:
            torch.set_num_threads(torch_threads)
        torch.manual_seed(0)
        spec = preset.recipe["model"]
        model = torch_models.LanguageModel(
            len(preset.vocabularies["vocab.txt"]),
            spec["layers"],
            spec["embedding_dim"],
            spec["dropout"],
        )
        backend = torch_models.GenerationBackend(model)
        times = generation_times(backend, prefix_ids, num_tokens, repeats)
        rows.append({"framework": "torch", **times, "threads": torch.get_num_threads()})
    return [
        {
            "benchmark": "decoding",
            "case": case,
            **row,
            "tokens": num_tokens,
            "tokens_per_sec": round(1000 / row["ms_median"], 1),
        }
        for row in rows
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200, help="distinct test sentences")
    parser.add_argument("--beams", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--tokens", type=int, default=400, help="tokens generated per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, help="default: PyTorch's own")
    args = parser.parse_args()
    for row in generation_rows(args.tokens, args.repeats, args.torch_threads):
        emit(row)
    for row in translation_rows(test_sources(args.sources), args.beams, args.repeats):
        emit(row)


if __name__ == "__main__":
    main()
