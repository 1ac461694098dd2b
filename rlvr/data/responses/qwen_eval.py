"""Qwen2.5-Math's evaluation output: one jsonl line per problem.

`idx`, `question`, `gt` (the extracted gold) and/or `answer`, the k responses in `code`, the
harness's `pred` and `score` (a list of booleans, one per response), optional `level`/`type`.
The harness writes DATA_NAME/test_<prompt>_<n>_seed<s>_t<temperature>_s<start>_e<end>.jsonl, so
the suite is the folder's name for such a file (else the file's stem) and the temperature is
read from the name when it is there.
"""

from __future__ import annotations

import re
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

_TEMPERATURE = re.compile(r"_t(\d+(?:\.\d+)?)(?:_|$)")


def looks_like(row: dict) -> bool:
    return "code" in row and ("gt" in row or "answer" in row)


def suite_of(path: Path) -> str:
    return path.parent.name if path.stem.startswith("test") and path.parent.name else path.stem


def parse(path: Path, suite: str | None = None) -> Parsed:
    out = Parsed()
    name = suite or suite_of(path)
    if (match := _TEMPERATURE.search(path.stem)) is not None:
        out.temperature = float(match.group(1))
    for number, row in jsonl_rows(path, out.problems):
        responses = texts(row.get("code"))
        if responses is None:
            out.problems.append(f"{path}:{number}: no responses (`code` is not a list of "
                                "strings); skipped")
            continue
        gold = gold_text(row["gt"] if row.get("gt") not in (None, "") else row.get("answer"))
        if gold is None:
            out.problems.append(f"{path}:{number}: no gold (`gt` or `answer`); skipped")
            continue
        scores = row.get("score") if isinstance(row.get("score"), list) else []
        labels = [harness_label(scores[i]) if i < len(scores) else None
                  for i in range(len(responses))]
        groups = {key: str(row[src]) for key, src in (("level", "level"), ("subject", "type"))
                  if row.get(src) not in (None, "")}
        out.add(0, Item(name, str(row.get("idx", number - 1)), gold,
                        [Response(t, label) for t, label in zip(responses, labels, strict=True)],
                        str(row.get("question") or ""), groups))
    return out
