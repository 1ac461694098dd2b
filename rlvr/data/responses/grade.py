"""Imported responses graded by our grader, with the harness's labels kept beside ours.

Records follow docs/run-format.md (`n_tokens` is null: a harness's text has no token count of
ours). Sample numbers: one response per item read at temperature 0
(or at an unknown temperature) is greedy (`sample` 0); otherwise responses are samples 1..k.
The harness's label is `harness_correct`; the agreement compares it with our strict grade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlvr.data.responses.items import Item, Parsed

__all__ = ["RESPONSE_CAP", "Agreement", "graded_records", "sample_numbers"]

RESPONSE_CAP = 20_000  # characters of a response kept in a record (as rlvr eval keeps)


@dataclass
class Agreement:
    """Our strict grade against the harness's labels, over the responses that have one."""

    compared: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def agree(self) -> int:
        return self.compared - len(self.disagreements)

    def line(self, shown: int = 3) -> str:
        if not self.compared:
            return "the files carry no labels of their own: nothing to compare our grades with"
        text = (f"agreement with the harness's own labels: {self.agree} of {self.compared} "
                f"responses ({100 * self.agree / self.compared:.1f}%), "
                f"{len(self.disagreements)} disagreement(s)")
        if self.disagreements:
            text += "; first: " + "; ".join(self.disagreements[:shown])
        return text


def sample_numbers(item: Item, temperature: float | None) -> list[int]:
    greedy = len(item.responses) == 1 and not temperature
    return [0] if greedy else list(range(1, len(item.responses) + 1))


def _unique(parsed: Parsed) -> tuple[dict[int, list[Item]], list[str]]:
    """Each step's items with (suite, id) once: a repeat is skipped with one line."""
    out, notes = {}, []
    for step, items in sorted(parsed.steps.items()):
        seen: set[tuple[str, str]] = set()
        out[step] = []
        for item in items:
            if (item.suite, item.id) in seen:
                notes.append(f"step {step}, {item.suite}: item {item.id} given twice; the "
                             "second is skipped")
                continue
            seen.add((item.suite, item.id))
            out[step].append(item)
    return out, notes


def graded_records(parsed: Parsed, *, timeout_s: float = 1.0, progress: bool = True
                   ) -> tuple[dict[int, dict[str, list[dict]]], Agreement, list[str]]:
    """{step: {suite: records}}, the agreement with the harness, and lines for skipped items."""
    from rlvr.grading import grade_many

    steps, notes = _unique(parsed)
    jobs = [(step, item, sample, response) for step, items in steps.items() for item in items
            for sample, response in zip(sample_numbers(item, parsed.temperature),
                                        item.responses, strict=True)]
    grades = grade_many([(r.text[:RESPONSE_CAP], item.gold or "",
                          r.finish_reason if r.finish_reason == "length" else None)
                         for _, item, _, r in jobs], timeout_s=timeout_s, progress=progress)
    out: dict[int, dict[str, list[dict]]] = {}
    agreement = Agreement()
    for (step, item, sample, response), g in zip(jobs, grades, strict=True):
        record = {"suite": item.suite, "id": item.id, "sample": sample, "gold": item.gold,
                  "groups": dict(item.groups), "response": response.text[:RESPONSE_CAP],
                  "finish_reason": response.finish_reason, "n_tokens": None,
                  "extracted": g.extracted, "extracted_lenient": g.extracted_lenient,
                  "format": g.format, "correct_strict": g.correct_strict,
                  "correct_lenient": g.correct_lenient, "timed_out": g.timed_out,
                  "reason": g.reason, "harness_correct": response.harness_correct}
        out.setdefault(step, {}).setdefault(item.suite, []).append(record)
        if response.harness_correct is not None:
            agreement.compared += 1
            if response.harness_correct != g.correct_strict:
                agreement.disagreements.append(
                    f"step {step} {item.suite}/{item.id} #{sample}: harness "
                    f"{'right' if response.harness_correct else 'wrong'}, rlvr "
                    f"{'right' if g.correct_strict else 'wrong'} (ours read "
                    f"{g.extracted_lenient!r}, gold {item.gold!r})")
    return out, agreement, notes
