"""The mobile card of an export: ``card.json`` (data) and ``card.md`` (to read)."""

from __future__ import annotations

import json
from pathlib import Path

# The card's sizes and quality as a picture, beside card.md
CHART = "card.png"


def _number(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def render_card(manifest: dict, card: dict) -> str:
    lines = [
        f"# {manifest['recipe']} — export card",
        "",
        f"Task: {manifest['task']}. Recipe sha256 `{manifest['recipe_sha256'][:16]}…`, "
        f"zoo {manifest['zoo_version']}. Measured on {card['machine']['platform']} "
        f"({card['machine']['cpu_count']} CPUs).",
        "",
        "## Files",
        "",
        f"![file sizes and quality]({CHART})",
        "",
        "| file | quantization | size (bytes) | of the float file | ops |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in card["files"]:
        ops = ", ".join(entry.get("ops", []))
        share = f"{entry['size_of_float']:.1%}" if "size_of_float" in entry else ""
        lines.append(
            f"| `{entry['file']}` | {entry['quantization']} | {entry['size']:,} | {share} | {ops} |"
        )
    if "saved_model" in manifest:
        signatures = ", ".join(manifest["saved_model"]["signatures"])
        lines.append(f"| `saved_model/` | float32 SavedModel ({signatures}) | | |")
    if card.get("size_note"):
        lines += ["", card["size_note"]]
    parity = card.get("parity")
    if parity and parity.get("backends"):
        lines += ["", "## Parity with the Keras model", "", f"Inputs: {parity['inputs']}.", ""]
        keys = sorted({key for values in parity["backends"].values() for key in values})
        lines.append("| backend | " + " | ".join(key.replace("_", " ") for key in keys) + " |")
        lines.append("| --- " * (len(keys) + 1) + "|")
        for name, values in parity["backends"].items():
            lines.append(f"| {name} | " + " | ".join(_number(values[k]) for k in keys) + " |")
    latency = card.get("latency")
    if latency:
        lines += [
            "",
            f"## Latency ({latency['unit']})",
            "",
            "| backend | seconds |",
            "| --- | --- |",
        ]
        lines += [
            f"| {name} | {_number(value)} |" for name, value in latency.items() if name != "unit"
        ]
    quality = card.get("quality")
    if quality:
        lines += [
            "",
            f"## Quality: {quality['metric']} on the {quality['split']} split, {quality['scope']}",
            "",
            "| model | value |",
            "| --- | --- |",
        ]
        # what was measured; the other entries are each model's value
        skip = {
            "metric",
            "key",
            "split",
            "scope",
            "tokens",
            "pairs",
            "sources",
            "whole_split",
            "beam_width",
        }
        lines += [f"| {k} | {_number(v)} |" for k, v in quality.items() if k not in skip]
    lines += [
        "",
        "## Using the files",
        "",
        "`export.json` lists every signature's tensors (names, shapes, dtypes), the special "
        "token ids, the text cleaning and the decoding settings. An app:",
        "",
    ]
    lines += [f"{number}. {step}" for number, step in enumerate(manifest.get("usage", []), 1)]
    return "\n".join(lines) + "\n"


def write_card(folder: Path, manifest: dict, card: dict) -> None:
    """``card.json``, ``card.md`` and ``card.png``, the chart that ``card.md`` shows."""
    from zoo.reports.figures import card_chart

    folder = Path(folder)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / "card.md").write_text(render_card(manifest, card), encoding="utf-8")
    card_chart(card, folder / CHART)
