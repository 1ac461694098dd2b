"""verl's `custom_reward_function` entry point, a public path: launch scripts and docs name this
file, and verl loads it by file path. The adaptor itself is `rlvr.integrations.verl`, beside
the TRL one, so that it sits with the rewards it wraps."""

from rlvr.integrations.verl import ENV_VARS, compute_score

__all__ = ["ENV_VARS", "compute_score"]
