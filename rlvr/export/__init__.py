"""Take an rlvr experiment to other engines and bring the results back.

- `rlvr.export.verl`: `export_verl(...)` writes a ready-to-launch verl 0.9 folder (training and
  validation parquet, a reward module calling rlvr, launch scripts with the paper's keys).
- `rlvr.export.verl_import`: `import_verl(...)` turns a verl run's Hugging Face checkpoints and
  per-example accuracies into an rlvr run directory (docs/run-format.md).
"""

from rlvr.export.verl import VERL_REWARD_MODES, export_verl
from rlvr.export.verl_import import import_verl

__all__ = ["VERL_REWARD_MODES", "export_verl", "import_verl"]
