"""The Spurious-Rewards / TTRL evaluation export: one JSON object per file and suite.

`{"dataset", "model", "temperature", "rollouts", "metadata": [{"prompt", "label", "index",
"outputs": [k strings]}]}`; one folder per checkpoint. A per-response label, where an export
carries one (`scores` or `correct`, a list beside `outputs`), is kept as the harness's.
"""

from __future__ import annotations

from pathlib import Path

from rlvr.data.responses.items import (
    Item,
    Parsed,
    Response,
    gold_text,
    harness_label,
    read_json_file,
    texts,
)

__all__ = ["looks_like", "parse"]


def looks_like(document) -> bool:
    return isinstance(document, dict) and isinstance(document.get("metadata"), list)


def parse(path: Path, suite: str | None = None, document=None) -> Parsed:
    out = Parsed()
    doc = document if document is not None else read_json_file(path, out.problems)
    if doc is None:
        return out
    if not looks_like(doc):
        out.problems.append(f"{path}: not a TTRL export (no `metadata` list); skipped")
        return out
    name = suite or str(doc.get("dataset") or path.stem)
    if isinstance(doc.get("temperature"), (int, float)):
        out.temperature = float(doc["temperature"])
    out.model = str(doc["model"]) if doc.get("model") else None
    for i, entry in enumerate(doc["metadata"]):
        where = f"{path}: metadata[{i}]"
        responses = texts(entry.get("outputs")) if isinstance(entry, dict) else None
        if responses is None:
            out.problems.append(f"{where}: no `outputs` list of strings; skipped")
            continue
        gold = gold_text(entry.get("label"))
        if gold is None:
            out.problems.append(f"{where}: no gold (`label`); skipped")
            continue
        scores = next((entry[k] for k in ("scores", "correct") if isinstance(entry.get(k), list)),
                      [])
        labels = [harness_label(scores[j]) if j < len(scores) else None
                  for j in range(len(responses))]
        out.add(0, Item(name, str(entry.get("index", i)), gold,
                        [Response(t, label) for t, label in zip(responses, labels, strict=True)],
                        str(entry.get("prompt") or "")))
    return out
