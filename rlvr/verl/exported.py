"""The reward functions of an exported verl folder: `rlvr_reward.py` is a short generated stub
that bakes the settings and calls `reward_functions(SETTINGS)` from here.

verl 0.9 loads the stub with `reward.custom_reward_function.path=<stub>` and `.name=
compute_score` (the exported reward) or `compute_score_entropy_only` (reward 0 for every
response), and calls it from worker threads; rlvr's grader keeps its own deadline without
signals. The baked settings override the row's extra_info and the RLVR_* environment variables.

verl logs no per-example training accuracy, so when $RLVR_ACC_LOG names a folder, every
training-row call appends {"t", "index", "acc", "score"} to <folder>/acc-<pid>.jsonl;
`rlvr import verl --reward-log <folder>` turns that into per-step accuracies.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from rlvr.integrations.verl import ENV_VARS
from rlvr.integrations.verl import compute_score as _rlvr_compute_score

__all__ = ["reward_functions"]

# Validation rows (split != "train") are scored as `outcome` whatever the training reward, so
# verl's validation reward is the accuracy (its val-core metrics read `acc` either way).
_VALIDATION = {"reward_mode": "outcome", "label": None, "wrong_label_kind": None}
_ENTROPY_ONLY = {"reward_mode": "none", "label": None, "wrong_label_kind": None}
_LOG_LOCK = threading.Lock()
_CALLS = itertools.count()  # next() is atomic under the GIL: a unique number per call


def reward_functions(settings: dict[str, Any]) -> tuple[Callable, Callable]:
    """(compute_score, compute_score_entropy_only) with `settings` baked in.

    An RLVR_* variable the settings leave unset would still reach rlvr's reading of the
    environment: refused here (at the stub's import) rather than mixing two experiments.
    """
    stray = [ENV_VARS[k] for k, v in settings.items() if v is None and os.environ.get(ENV_VARS[k])]
    if stray:
        raise RuntimeError(f"unset {', '.join(stray)}: this reward module bakes its own settings")
    log_dir = os.environ.get("RLVR_ACC_LOG") or None

    def compute_score(data_source=None, solution_str=None, ground_truth=None, extra_info=None,
                      **kwargs):
        """The exported reward mode; `score` is the reward, `acc` the accuracy on the true gold."""
        return _score(settings, log_dir, data_source, solution_str, ground_truth, extra_info)

    def compute_score_entropy_only(data_source=None, solution_str=None, ground_truth=None,
                                   extra_info=None, **kwargs):
        """Reward 0 for every response: GRPO advantages vanish, only the entropy bonus trains."""
        return _score(_ENTROPY_ONLY, log_dir, data_source, solution_str, ground_truth,
                      extra_info)

    return compute_score, compute_score_entropy_only


def _score(settings, log_dir, data_source, solution_str, ground_truth, extra_info):
    extra = dict(extra_info) if isinstance(extra_info, dict) else {}
    if extra.get("split", "train") != "train":
        settings = _VALIDATION
    extra.update({k: v for k, v in settings.items() if v is not None})
    if settings.get("reward_mode") == "random":
        # verl names neither the step nor the rollout: without this key, equal responses to an
        # example would draw equal rewards in every step.
        extra["step"] = f"{os.getpid()}:{next(_CALLS)}"
    result = _rlvr_compute_score(data_source=data_source, solution_str=solution_str,
                                 ground_truth=ground_truth, extra_info=extra)
    if log_dir is not None:
        _log(log_dir, extra, result)
    return result


def _log(log_dir: str, extra: dict, result: dict) -> None:
    if extra.get("split") != "train":
        return
    try:
        index: Any = int(extra.get("index"))
    except (TypeError, ValueError):
        index = str(extra.get("index"))
    line = json.dumps({"t": time.time(), "index": index, "acc": result["acc"],
                       "score": result["score"]}) + "\n"
    with _LOG_LOCK, open(os.path.join(log_dir, f"acc-{os.getpid()}.jsonl"), "a") as f:
        f.write(line)
