"""GRPO for 1-shot RLVR: pure math in `core_algos`, configs in `config`, presets in `presets`,
one step in `trainer`, the run around it in `loop`, its evaluations in `eval_hook`.

Import the trainer lazily (`from rlvr.rl.loop import train`, `from rlvr.rl.trainer import
Trainer`): it pulls in torch and transformers, which `rlvr --help` should not pay for.
"""

__all__ = ["checkpoint", "config", "core_algos", "eval_hook", "loop", "presets", "trainer"]
