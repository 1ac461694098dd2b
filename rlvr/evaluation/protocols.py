"""Evaluation protocols: how a published number was measured, suite by suite.

`paper` is the 1-shot RLVR paper's evaluation (arXiv 2504.20571, its Qwen2.5-Math harness):
the `qwen25-math-cot` prompt, up to 3,072 new tokens, greedy decoding for MATH500, Minerva and
OlympiadBench, the mean over 8 samples at temperature 0.6 (avg@8; the paper calls it pass@8)
for AIME24, AIME25 and AMC23, 3 s of grading per response. Generation stops at the chat
template's end-of-turn marker (`rlvr.model.rollout.eos_token_ids`), and what precedes it is graded.
Every record carries our strict grade (the last `\\boxed{}`) and our lenient one (the boxed
answer, else a stated answer, else the last number), so the paper's lenient-extraction numbers
sit beside the strict ones; graders that evaluate model strings as code are not ported.

Other suites under a protocol get its common settings and greedy decoding. Flags given on the
command line win over the protocol (the run's config.toml records what was used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlvr.errors import UserError

__all__ = ["NO_PROTOCOL", "PAPER_SUITES", "PROTOCOLS", "protocol_settings"]

PAPER_SUITES = ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench")

_GREEDY: dict[str, Any] = {"greedy": True, "samples": 0}
_AVG8: dict[str, Any] = {"greedy": False, "samples": 8, "temperature": 0.6, "top_p": 1.0}

# `rlvr eval` without a protocol (and without the setting in a run's config): what no flag
# gives. The rest of `EvalSettings` keeps its own defaults.
NO_PROTOCOL: dict[str, Any] = {"max_new_tokens": 256}

PROTOCOLS: dict[str, dict[str, Any]] = {
    "paper": {
        "suites": PAPER_SUITES,
        "common": {"template": "qwen25-math-cot", "max_new_tokens": 3072,
                   "grade_timeout_s": 3.0},
        "per_suite": {"math500": _GREEDY, "minerva_math": _GREEDY, "olympiadbench": _GREEDY,
                      "aime24": _AVG8, "aime25": _AVG8, "amc23": _AVG8},
        "other": _GREEDY,
    },
}


def protocol_settings(name: str, suites: Sequence[str], flags: Mapping[str, Any]) -> dict:
    """Per-suite `EvalSettings` of protocol `name` for `suites`; non-None `flags` win."""
    from rlvr.evaluation.evaluate import EvalSettings

    if name not in PROTOCOLS:
        raise UserError(f"unknown evaluation protocol {name!r}",
                        f"valid: {', '.join(PROTOCOLS)}")
    protocol = PROTOCOLS[name]
    given = {k: v for k, v in flags.items() if v is not None}
    out = {}
    for suite in suites:
        decoding = protocol["per_suite"].get(suite, protocol["other"])
        values = {**protocol["common"], **decoding, **given}
        out[suite] = EvalSettings.from_dict(values)
    return out
