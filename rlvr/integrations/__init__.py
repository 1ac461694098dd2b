"""Adaptors that let the training engines call rlvr's rewards unchanged.

* `rlvr.integrations.trl.reward_function(mode, **opts)`: a TRL `GRPOTrainer` reward function.
* `rlvr.integrations.verl.compute_score`: verl's `custom_reward_function`; verl launch scripts
  name it by its public path `rlvr.verl.reward`, which re-exports it.

Neither module imports its engine, so both work (and are tested) without TRL or verl installed.
"""

__all__: list[str] = []
