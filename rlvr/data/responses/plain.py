"""Our plain jsonl: `{id, answer, response}` or `{id, answer, responses: [...]}` per line.

Optional: `problem`, `suite` (else `--suite`, else the file's stem), `correct` (the harness's
label: a bool, or a list beside `responses`), `finish_reason` (or `finish_reasons`), and the
group columns (`family`, `subject`, `level`).
"""

from __future__ import annotations

from pathlib import Path

from rlvr.data.responses.items import (
    Item,
    Parsed,
    Response,
    gold_text,
    harness_label,
    jsonl_rows,
    texts,
)

__all__ = ["looks_like", "parse"]

_GROUPS = ("family", "subject", "level")


def looks_like(row: dict) -> bool:
    return "response" in row or "responses" in row


def _listed(value, n: int) -> list:
    return list(value[:n]) + [None] * (n - len(value)) if isinstance(value, list) else [value] * n


def parse(path: Path, suite: str | None = None) -> Parsed:
    out = Parsed()
    for number, row in jsonl_rows(path, out.problems):
        responses = texts(row.get("responses", row.get("response")))
        if responses is None:
            out.problems.append(f"{path}:{number}: no `response` string or `responses` list; "
                                "skipped")
            continue
        gold = gold_text(row.get("answer"))
        if gold is None or row.get("id") in (None, ""):
            out.problems.append(f"{path}:{number}: no {'gold (`answer`)' if gold is None else '`id`'}"
                                "; skipped")
            continue
        n = len(responses)
        labels = [harness_label(v) for v in _listed(row.get("correct"), n)]
        finishes = _listed(row.get("finish_reasons", row.get("finish_reason")), n)
        groups = {k: str(row[k]) for k in _GROUPS if row.get(k) not in (None, "")}
        out.add(0, Item(str(row.get("suite") or suite or path.stem), str(row["id"]), gold,
                        [Response(t, label, str(f) if f else "unknown")
                         for t, label, f in zip(responses, labels, finishes, strict=True)],
                        str(row.get("problem") or ""), groups))
    return out
