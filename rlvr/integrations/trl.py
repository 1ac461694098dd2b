"""rlvr rewards as a TRL `GRPOTrainer` reward function.

```python
from rlvr.integrations.trl import reward_function
trainer = GRPOTrainer(model=..., reward_funcs=[reward_function("outcome")], train_dataset=ds, ...)
```

TRL calls a reward function as `f(prompts=, completions=, completion_ids=, **columns)`, where
`columns` are the dataset's other columns repeated per completion, plus `trainer_state`,
`log_metric` and `log_extra`. It logs each function's mean reward under the function's
`__name__`, so the name says the mode (`rlvr_outcome`, `rlvr_wrong_label_guessable`, ...).

The gold comes from the column `gold_column` when given, else the first present of `answer`,
`ground_truth`, `solution` (a worked solution: its last `\\boxed{}` is the gold) and
`reward_model` (verl's schema: `{"ground_truth": ...}`).

The `random` mode keys each draw by `(global_step, RANK, call within the step, position)`, so a
resumed trainer redraws exactly the rewards the original run drew, and data-parallel processes
(torchrun/accelerate set `RANK`) do not draw the same rewards for their slices.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from rlvr.errors import UserError
from rlvr.grading import FORMATS, last_boxed
from rlvr.grading.rewards import RewardSpec, score

__all__ = ["GOLD_COLUMNS", "completion_text", "reward_function"]

GOLD_COLUMNS = ("answer", "ground_truth", "solution", "reward_model")


def reward_function(
    mode: str = "outcome",
    *,
    label: str | None = None,
    wrong_label_kind: str | None = None,
    p: float = 0.5,
    seed: int = 0,
    gold_column: str | None = None,
    timeout_s: float = 1.0,
    log_metrics: bool = True,
) -> Callable[..., list[float]]:
    """A TRL reward function for one rlvr reward mode (see `rlvr.grading.rewards.RewardSpec`).

    With `log_metrics`, each call also logs, through TRL's `log_metric`, the rate of each format
    class, the timeout rate and the accuracy against the true gold, as `<name>/format_boxed`,
    ..., `<name>/timeout_rate`, `<name>/true_acc` (`<name>` is the function's `__name__`).
    """
    spec = RewardSpec(mode=mode, label=label, wrong_label_kind=wrong_label_kind, p=p, seed=seed)
    calls = _CallCounter()

    def rlvr_reward(prompts=None, completions=None, **columns: Any) -> list[float]:
        if completions is None:
            raise UserError("the rlvr reward function was called without completions",
                            "call it as TRL does: f(prompts=..., completions=..., **columns)")
        texts = [completion_text(c) for c in completions]
        golds = _golds(columns, gold_column, len(texts))
        finish = columns.get("finish_reason") or [None] * len(texts)
        state = columns.get("trainer_state")
        step = getattr(state, "global_step", None)
        call = calls.next(step)
        # Each data-parallel process scores its own slice: the rank keeps their draws apart.
        rank = int(os.environ.get("RANK", "0") or 0)
        rewards, infos = [], []
        for i, (text, gold) in enumerate(zip(texts, golds, strict=True)):
            reward, info = score(spec, text, gold, finish_reason=finish[i],
                                 key=(step, rank, call, i), timeout_s=timeout_s)
            rewards.append(reward)
            infos.append(info)
        log_metric = columns.get("log_metric")
        if log_metrics and callable(log_metric) and infos:
            for metric, value in _batch_metrics(infos).items():
                log_metric(f"{name}/{metric}", value)
        return rewards

    name = f"rlvr_{mode}" + (f"_{wrong_label_kind}" if wrong_label_kind else "")
    rlvr_reward.__name__ = rlvr_reward.__qualname__ = name
    rlvr_reward.spec = spec  # type: ignore[attr-defined]
    return rlvr_reward


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or chat messages (the last assistant message)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        if assistant:
            return _content_text(assistant[-1].get("content"))
        if messages:
            return _content_text(messages[-1].get("content"))
        return ""
    raise UserError(f"cannot read a completion of type {type(completion).__name__}",
                    "completions must be strings or lists of chat messages")


def _content_text(content: Any) -> str:
    # Multimodal chat content is a list of parts: [{"type": "text", "text": ...}, ...].
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part)
                       for part in content)
    return str(content)


def _golds(columns: dict[str, Any], gold_column: str | None, n: int) -> list[str]:
    if gold_column is not None:
        if gold_column not in columns:
            raise UserError(f"the dataset has no gold column {gold_column!r}",
                            f"columns present: {', '.join(sorted(_data_columns(columns))) or 'none'}")
        name = gold_column
    else:
        name = next((c for c in GOLD_COLUMNS if c in columns), None)
        if name is None:
            raise UserError(
                "cannot find the gold answer among the dataset columns "
                f"({', '.join(sorted(_data_columns(columns))) or 'none'})",
                f"add one of {', '.join(GOLD_COLUMNS)} or pass gold_column=...",
            )
    values = columns[name]
    if len(values) != n:
        raise UserError(f"column {name!r} has {len(values)} values for {n} completions")
    return [_gold_text(v, name) for v in values]


def _data_columns(columns: dict[str, Any]) -> list[str]:
    return [c for c in columns if c not in ("trainer_state", "log_metric", "log_extra",
                                             "completion_ids", "environments")]


def _gold_text(value: Any, column: str) -> str:
    if isinstance(value, dict):
        value = value.get("ground_truth", "")
    if isinstance(value, (list, tuple)):
        # OlympiadBench stores multi-part answers as a list.
        value = value[0] if len(value) == 1 else ", ".join(str(v) for v in value)
    text = "" if value is None else str(value)
    if column == "solution" and "\\boxed" in text:
        text = last_boxed(text) or text
    return text


def _batch_metrics(infos: list[dict[str, Any]]) -> dict[str, float]:
    n = len(infos)
    formats = Counter(info["format"] for info in infos)
    metrics = {f"format_{name}": formats.get(name, 0) / n for name in FORMATS}
    metrics["timeout_rate"] = sum(bool(i["timed_out"]) for i in infos) / n
    metrics["true_acc"] = sum(bool(i["true_correct_strict"]) for i in infos) / n
    return metrics


class _CallCounter:
    """Numbers the calls within one optimizer step (several generation batches share a step)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._step: Any = object()
        self._count = 0

    def next(self, step: Any) -> int:
        with self._lock:
            if step != self._step:
                self._step, self._count = step, 0
            else:
                self._count += 1
            return self._count
