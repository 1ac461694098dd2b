"""rlvr rewards as verl's custom reward function.

In the verl launch command:

    reward.custom_reward_function.path=$(python -c "import rlvr.verl.reward as m; print(m.__file__)")
    reward.custom_reward_function.name=compute_score

verl calls `compute_score(data_source=, solution_str=, ground_truth=, extra_info=)` from worker
threads; the grader owns its deadline without signals, so that is safe.

The reward setting is read per sample: from the row's `extra_info` when it has a
`reward_mode` (then every other key also comes from `extra_info`), else from the environment
(set it in the launch script, before verl starts its workers), else the defaults:

| extra_info key      | environment variable      | default     |
|---------------------|---------------------------|-------------|
| `reward_mode`       | `RLVR_REWARD_MODE`        | `outcome`   |
| `label`             | `RLVR_REWARD_LABEL`       | none        |
| `wrong_label_kind`  | `RLVR_WRONG_LABEL_KIND`   | none        |
| `reward_p`          | `RLVR_REWARD_P`           | `0.5`       |
| `reward_seed`       | `RLVR_REWARD_SEED`        | `0`         |
| `finish_reason`     | —                         | none        |

The returned dict always has the same keys (verl stacks each key across samples): `score`,
`acc` (boxed answer equals the TRUE gold, whatever the mode: verl reports `acc` in validation),
`pred` (the boxed answer, "" if none: verl's majority vote reads it), the Grade's fields with
None as "", and `reward_mode` and `label`.

`random` keys its draw by (the row's `extra_info["index"]`, an optional `extra_info["step"]`,
and a hash of the response): verl does not tell a reward function which rollout it scores, so
two identical responses to one example draw the same reward.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Any

from rlvr.errors import UserError
from rlvr.grading.rewards import RewardSpec, score

__all__ = ["ENV_VARS", "compute_score"]

ENV_VARS = {
    "reward_mode": "RLVR_REWARD_MODE",
    "label": "RLVR_REWARD_LABEL",
    "wrong_label_kind": "RLVR_WRONG_LABEL_KIND",
    "reward_p": "RLVR_REWARD_P",
    "reward_seed": "RLVR_REWARD_SEED",
}


def compute_score(
    data_source: str | None = None,
    solution_str: str | None = None,
    ground_truth: Any = None,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Grade one decoded response and reward it; the dict's `score` is the reward."""
    extra = extra_info if isinstance(extra_info, dict) else {}
    # A row that names its mode carries its whole setting; mixing it with the environment's
    # label would silently build a reward nobody asked for.
    source = extra if extra.get("reward_mode") is not None else os.environ
    spec = _spec(*(_setting(source, name) for name in ENV_VARS))
    response = "" if solution_str is None else str(solution_str)
    gold = _gold_text(ground_truth)
    key = (_plain(extra.get("index")), _plain(extra.get("step")),
           hashlib.blake2b(response.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest())
    reward, info = score(spec, response, gold, finish_reason=extra.get("finish_reason"), key=key)
    return {
        "score": float(reward),
        "acc": float(info["true_correct_strict"]),
        "pred": info["extracted"] or "",
        "extracted": info["extracted"] or "",
        "extracted_lenient": info["extracted_lenient"] or "",
        "format": info["format"],
        "correct_strict": bool(info["correct_strict"]),
        "correct_lenient": bool(info["correct_lenient"]),
        "timed_out": bool(info["timed_out"]),
        "reason": info["reason"],
        "reward_mode": spec.mode,
        "label": info["label"],
    }


def _setting(source: Any, name: str) -> str | None:
    value = source.get(ENV_VARS[name] if source is os.environ else name)
    return None if value is None or value == "" else str(value)


@lru_cache(maxsize=64)
def _spec(mode: str | None, label: str | None, kind: str | None, p: str | None,
          seed: str | None) -> RewardSpec:
    # Cached so a step's thousands of calls build (and validate) the spec once per setting.
    try:
        p_value = 0.5 if p is None else float(p)
        seed_value = 0 if seed is None else int(seed)
    except ValueError:
        raise UserError(f"bad random-reward setting p={p!r} seed={seed!r}",
                        f"{ENV_VARS['reward_p']} is a number in [0, 1], "
                        f"{ENV_VARS['reward_seed']} an integer") from None
    return RewardSpec(mode=mode or "outcome", label=label, wrong_label_kind=kind,
                      p=p_value, seed=seed_value)


def _gold_text(ground_truth: Any) -> str:
    if isinstance(ground_truth, dict):
        ground_truth = ground_truth.get("ground_truth")
    if isinstance(ground_truth, (list, tuple)):
        if len(ground_truth) == 1:
            ground_truth = ground_truth[0]
        else:
            ground_truth = ", ".join(str(v) for v in ground_truth)
    return "" if ground_truth is None else str(ground_truth)


def _plain(value: Any) -> Any:
    # extra_info comes out of a parquet file: numpy scalars must key like Python ints.
    if value is None or isinstance(value, (int, str)):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)
