"""GRPO for 1-shot RLVR: pure math in `core_algos`, configs in `config`, the loop in `trainer`.

Import the trainer lazily (`from rlvr.rl.trainer import train, Trainer`): it pulls in torch and
transformers, which `rlvr --help` should not pay for.
"""

__all__ = ["checkpoint", "config", "core_algos", "trainer"]
