"""`Problem`: one math question with its gold answer, the unit every suite and training set holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """A question and its gold answer as the source stores it (bare LaTeX, a number, a list...).

    `id` is unique within `suite`; `meta` carries source-specific fields (OlympiadBench's
    `is_multiple_answer`, a training pool's `index`, an organism family's name).
    """

    id: str
    problem: str
    answer: str
    suite: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "problem": self.problem, "answer": self.answer,
                "suite": self.suite, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        return cls(id=str(d["id"]), problem=d["problem"], answer=str(d["answer"]),
                   suite=d.get("suite", ""), meta=dict(d.get("meta") or {}))
