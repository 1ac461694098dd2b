"""Which rollouts produced the training label, and through which reasoning style.

A wrong-label run can only move the policy once some rollout writes the label: the step and the
style through which that first happened (a guess that drops a carry, a working chain that
slipped) say how the label acted. The trainer logs, per step, the rollouts' style counts
(`rollout_styles`) and the label hits among them (`label_hits`, by style); for every reward
mode the training label is what the reward grades against (the gold, or the replacement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlvr.decomposition.styles import Classifier

__all__ = ["classifier_for", "label_hits"]


def classifier_for(model_path: str) -> Classifier:
    """The style classifier of a run's model (`""` is the shipped organism): the organism's
    mode markers for an organism, the generic text proxy otherwise (rlvr.decomposition.styles)."""
    from rlvr.decomposition.styles import default_classifier, get_classifier

    return get_classifier(default_classifier(model_path))


def label_hits(completions: Sequence[Any], infos: Sequence[dict], classify: Classifier
               ) -> dict[str, Any]:
    """`{"rollout_styles": {style: n}, "label_hits": {style: n}, "label_hit_frac": f}`."""
    styles: dict[str, int] = {}
    hits: dict[str, int] = {}
    for c, info in zip(completions, infos, strict=True):
        style = classify(c.text, info["format"], c.finish_reason)
        styles[style] = styles.get(style, 0) + 1
        if info["correct_strict"]:  # graded against the training label
            hits[style] = hits.get(style, 0) + 1
    return {"rollout_styles": styles, "label_hits": hits,
            "label_hit_frac": sum(hits.values()) / max(len(infos), 1)}
