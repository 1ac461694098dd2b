"""Everything rlvr does with verl 0.9, in one package (verl itself is never imported).

- `rlvr.verl.reward`: `compute_score`, verl's `custom_reward_function` entry point (a public
  path; the adaptor lives in `rlvr.integrations.verl`). verl's parquet is `rlvr.data.verl_parquet`.
- `rlvr.verl.export`: `rlvr export verl`, the same 1-shot experiment as a ready-to-launch folder;
  its `rlvr_reward.py` is a stub that bakes the settings into `rlvr.verl.exported`.
- `rlvr.verl.exported`: the exported reward functions (training, entropy-only, accuracy log).
- `rlvr.verl.importer`: `rlvr import verl`, a verl run's checkpoints and accuracies back as an
  rlvr run directory (docs/run-format.md).

Submodules are imported on use: the reward adaptor runs inside verl's workers and stays light.
"""

__all__: list[str] = []
