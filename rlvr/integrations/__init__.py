"""Adaptors that let the training engines call rlvr's rewards unchanged.

* `rlvr.integrations.trl.reward_function(mode, **opts)` — a TRL `GRPOTrainer` reward function.
* `rlvr.verl.reward.compute_score` (verl's `custom_reward_function`) lives with the rest of
  the verl code in `rlvr.verl`; `rlvr.integrations.verl` re-exports it for older exports.

Neither module imports its engine, so both work (and are tested) without TRL or verl installed.
"""

__all__: list[str] = []
