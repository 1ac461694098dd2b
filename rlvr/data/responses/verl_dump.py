"""verl's generation dumps (`trainer.validation_data_dir`): `{step}.jsonl`, one line per response.

Columns: `input` (the decoded prompt, chat template included), `output`, `score` (the reward,
kept as the harness's label: correct when > 0), `step`, any reward extra-info columns, and in
newer verl `gts` (the gold). Each step becomes `eval/step-N`; the suite is the `data_source`
column where there is one, else `--suite`, else `verl`. An item is one distinct prompt.

Older dumps have no `gts`: the gold then comes from `--gold` (a suite or data file), matched by
problem text: the item whose problem text (whitespace collapsed) appears inside the prompt. No
match: the prompt's responses are skipped (one line). Several: the longest text wins when it
contains the others (a short problem inside a longer one); otherwise the match is ambiguous
and skipped (one line).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from rlvr.data.responses.items import (
    Item,
    Parsed,
    Response,
    gold_text,
    harness_label,
    jsonl_rows,
    step_in_name,
)
from rlvr.problem import Problem

__all__ = ["GoldIndex", "looks_like", "parse"]


def looks_like(row: dict) -> bool:
    return "input" in row and "output" in row


def _squash(text: str) -> str:
    return " ".join(text.split())


class GoldIndex:
    """Gold items (`--gold`) found by their problem text inside a prompt."""

    def __init__(self, problems: Sequence[Problem]):
        self.rows = [(_squash(p.problem), p) for p in problems if p.problem.strip()]
        self.used = 0  # prompts matched: 0 after an import says --gold was not needed

    def find(self, prompt: str) -> tuple[Problem | None, str]:
        """(the item, "") or (None, why not)."""
        text = _squash(prompt)
        hits = [(t, p) for t, p in self.rows if t in text]
        if not hits:
            return None, "no --gold problem text appears inside this prompt"
        hits.sort(key=lambda h: -len(h[0]))
        best = hits[0]
        if all(t in best[0] for t, _ in hits[1:]) and not any(
                t == best[0] and p.id != best[1].id for t, p in hits[1:]):
            self.used += 1
            return best[1], ""
        return None, f"{len(hits)} --gold problems match this prompt ({', '.join(p.id for _, p in hits[:3])})"


def parse(path: Path, suite: str | None = None, gold: GoldIndex | None = None) -> Parsed:
    out = Parsed(temperature=None)
    items: dict[tuple[int, str, str], Item] = {}
    skipped: dict[str, list[int]] = {}
    file_step = step_in_name(path.name)
    for number, row in jsonl_rows(path, out.problems):
        if not looks_like(row) or not isinstance(row["output"], str):
            out.problems.append(f"{path}:{number}: no `input`/`output` strings; skipped")
            continue
        prompt = str(row["input"])
        step = row.get("step") if isinstance(row.get("step"), int) else file_step
        name = str(row.get("data_source") or suite or "verl")
        key = (step or 0, name, prompt)
        if key not in items:
            item_id, answer = "p" + hashlib.sha1(prompt.encode()).hexdigest()[:12], None
            if row.get("gts") not in (None, ""):
                answer = gold_text(row["gts"])
            elif gold is not None:
                found, why = gold.find(prompt)
                if found is None:
                    skipped.setdefault(why, []).append(number)
                    continue
                item_id, answer = found.id, found.answer
            else:
                skipped.setdefault("no gold: the dump has no `gts` column and no --gold was "
                                   "given", []).append(number)
                continue
            items[key] = Item(name, item_id, answer, [], prompt)
        items[key].responses.append(Response(row["output"], harness_label(row.get("score"))))
    for why, lines in skipped.items():
        out.problems.append(f"{path}: {len(lines)} response(s) skipped (first on line "
                            f"{lines[0]}): {why}")
    for (step, _, _), item in items.items():
        out.add(step, item)
    return out
