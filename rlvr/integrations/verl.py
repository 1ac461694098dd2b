"""Moved to `rlvr.verl.reward`; this path stays because reward modules written by earlier
`rlvr export verl` runs import it (and verl loads them by file path)."""

from rlvr.verl.reward import ENV_VARS, compute_score

__all__ = ["ENV_VARS", "compute_score"]
