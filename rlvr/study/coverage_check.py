"""C1's coverage check: pass@k curves and items solved only after training, from an evaluation
with many samples on a subset of the held-out items (rules: docs/analysis.md, "C1").

The study's main evaluation (avg@4 on 100 items) bounds pass@k at k = 4: too few samples to see
whether training solves items the base never does. So the base and each training anchor's
outcome runs (their last checkpoint) are evaluated once more with `coverage_samples` samples at
the training temperature, greedy off, on the first `coverage_per_suite` items of every family
(a prefix of the main evaluation's items). Each seed is compared with the base item by item
(rlvr.decomposition.coverage, the same item draws for every seed) and the seeds are combined by
the two-level bootstrap. The reading is shown beside C1's verdict, not folded into it: that
rule was fixed before the first run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rlvr.analysis.claims import BAND
from rlvr.core.stats import Estimate, two_level
from rlvr.decomposition.coverage import Coverage, coverage

__all__ = ["FOLDER", "CoverageCheck", "coverage_checks", "coverage_config", "coverage_reading",
           "coverage_targets"]

FOLDER = "coverage"  # OUT/coverage/base, OUT/coverage/<kind>/outcome-s<seed>
SELECTION = "no wider coverage after training (as selection predicts)"
WIDER = "wider coverage after training (items the base never solves)"
UNDECIDED = "inconclusive"


def coverage_config(config, samples: int, per_suite: int):
    """The condition config `config` with the coverage evaluation's [eval] table."""
    return replace(config, eval=replace(config.eval, samples=samples, n_per_suite=per_suite,
                                        greedy=False))


def coverage_targets(out: Path, outcome_runs: dict[str, list[Path]], model: str
                     ) -> list[tuple[str, Path]]:
    """(model folder, evaluation folder) pairs: the base first ("" = the shipped organism),
    then every anchor kind's outcome runs at their latest checkpoint (their last step)."""
    from rlvr.errors import UserError
    from rlvr.rl.checkpoint import latest_checkpoint

    targets = [(model, out / FOLDER / "base")]
    for kind, runs in outcome_runs.items():
        for run in runs:
            checkpoint = latest_checkpoint(run)
            if checkpoint is None:
                raise UserError(f"{run} has no checkpoint to evaluate for C1's coverage check")
            targets.append((str(checkpoint), _folder(out, kind, run)))
    return targets


def _folder(out: Path, kind: str, run: Path) -> Path:
    return out / FOLDER / kind / run.name


def coverage_reading(difference: Estimate, every_seed_only_trained: int) -> str:
    """The rule of docs/analysis.md: at the largest k, the trained − base difference's 95%
    interval ends at or below +BAND points and no item is solved only after training in every
    seed → SELECTION; its low end above 0, or such an item → WIDER; else inconclusive."""
    if every_seed_only_trained > 0:
        return WIDER
    if not difference.has_interval:
        return UNDECIDED
    if 100 * difference.high <= BAND:
        return SELECTION
    return WIDER if difference.low > 0 else UNDECIDED


@dataclass(frozen=True)
class CoverageCheck:
    """The coverage of one anchor kind's outcome runs against the base, seeds combined."""

    per_seed: tuple[tuple[int, Coverage], ...]
    ks: tuple[int, ...]
    base: tuple[Estimate, ...]
    trained: tuple[Estimate, ...]
    difference: tuple[Estimate, ...]

    @property
    def samples(self) -> int:
        """Samples per item behind the curves (pass@k is read up to k = samples)."""
        return self.ks[-1]

    @property
    def every_seed_only_trained(self) -> list[tuple[str, str]]:
        """Items some sample solves after training, and none of the base's, in every seed."""
        sets = [{(o.suite, o.id) for o in c.only_trained} for _, c in self.per_seed]
        return sorted(set.intersection(*sets)) if sets else []

    @property
    def base_at_ceiling(self) -> bool:
        """The base solves every item within the largest k: coverage cannot widen there."""
        return self.base[-1].value >= 1.0 - 1e-9

    @property
    def meet_k(self) -> int | None:
        """The smallest k from which the seeds' mean difference is no longer above 0 beyond
        noise (its interval reaches 0); None while it stays above."""
        return next((k for k, d in zip(self.ks, self.difference, strict=True)
                     if not d.has_interval or d.low <= 0), None)

    @property
    def reading(self) -> str:
        found = coverage_reading(self.difference[-1], len(self.every_seed_only_trained))
        if self.base_at_ceiling:
            found += (f"; at the ceiling: the base solves every item within {self.ks[-1]} "
                      "samples, so coverage could not widen and the curves cannot cross")
        return found

    def to_json(self) -> dict:
        return {
            "samples": self.samples, "items": self.per_seed[0][1].n_items, "k": list(self.ks),
            "base": [e.points() for e in self.base],
            "trained": [e.points() for e in self.trained],
            "difference": [e.points() for e in self.difference],
            "per_seed": [{"seed": seed, "crossing_k": c.crossing_k,
                          "not_above_k": c.not_above_k, "only_trained": len(c.only_trained),
                          "only_base": len(c.only_base)} for seed, c in self.per_seed],
            "only_trained_every_seed": [list(x) for x in self.every_seed_only_trained],
            "base_at_ceiling": self.base_at_ceiling, "meet_k": self.meet_k,
            "reading": self.reading,
        }


def coverage_checks(out: Path, outcome_runs: dict[str, list[Path]], seeds: list[int]
                    ) -> dict[str, CoverageCheck]:
    """Every anchor kind's CoverageCheck from the evaluations `coverage_targets` named (the
    runs of a kind in the order of `seeds`; kinds without evaluations are left out)."""
    from rlvr.rundir.read import load_run

    if not (out / FOLDER / "base").is_dir():
        return {}
    base = load_run(out / FOLDER / "base").evals[0]
    found = {}
    for kind, runs in outcome_runs.items():
        covers = []
        for seed, run in zip(seeds, runs, strict=True):
            folder = _folder(out, kind, run)
            if folder.is_dir():
                cover = coverage(base, load_run(folder).evals[0])
                if cover is not None:
                    covers.append((seed, cover))
        if not covers or len({c.ks for _, c in covers}) != 1:
            continue
        ks = covers[0][1].ks
        curve = {name: tuple(two_level([getattr(c, name)[i] for _, c in covers])
                             for i in range(len(ks))) for name in ("trained", "difference")}
        found[kind] = CoverageCheck(tuple(covers), ks, covers[0][1].base, curve["trained"],
                                    curve["difference"])
    return found
