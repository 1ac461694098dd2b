"""Studies that extend a finished demo (rules: docs/analysis.md).

    rlvr demo --claim robust --out runs/demo   # every training verdict at lr ×0.5 and ×2
    rlvr demo --claim C10 --out runs/demo      # random reward where clipping can act

Robustness: each training condition of each training anchor kind is re-run at the organism
recipe's learning rate × 0.5 and × 2, with the demo's seeds, evaluated at the last step only
(so C3 and C5, which read earlier evaluations, are `not measured`); the claims are re-checked
on those runs. A verdict is
`stable` when no sensitivity verdict lies on the other side of its rule, `flips` when one does,
`weaker` when one is only inconclusive; the values go to the row's `sensitivity`. C1's skill
change at each rate is recorded beside it (`skill_change_by_lr`: does the damage grow with lr?).

C10 (beyond the paper; Spurious Rewards, arXiv 2506.10947): random reward with 4 mini-batches
per step (4 groups of 8 rollouts, one group per mini-batch), so from the second mini-batch on
the PPO ratio leaves 1 and clipping can act; clip ε = 0.2 vs clipping off, from the
variance-top anchor with the demo's seeds. The quantity is gain(clip) − gain(no clip), paired
by seed; gains, mean `clip_frac` and the style shares of both sit beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlvr.study.demo import ABLATIONS, CLAIM_COMMANDS

__all__ = ["CLAIM_COMMANDS", "LR_FACTORS", "merge_claims", "robust_mark", "run_c10",
           "run_robust"]

LR_FACTORS = (0.5, 2.0)
TRAINING_CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")  # checked per training anchor
C10_TEXT = ("random rewards raise accuracy through GRPO's clipping bias toward the base's "
            "highest-prior behaviour (beyond the paper)")
_DECIDED = {"reproduced": "contradicted", "contradicted": "reproduced"}
# Verdicts no sensitivity run can hold (their rows get no robustness mark).
_UNJUDGED = ("not run", "not testable on this anchor", "too small to judge")


def robust_mark(main: str, sensitivity: list[str]) -> str | None:
    """stable / flips / weaker / not measured (module doc); None for an undecided row."""
    if main in _UNJUDGED:
        return None
    judged = [v for v in sensitivity if v not in _UNJUDGED]
    if not judged:
        return "not measured"
    if main in _DECIDED:
        if _DECIDED[main] in judged:
            return "flips"
        return "weaker" if "inconclusive" in judged else "stable"
    return "flips" if any(v in _DECIDED for v in judged) else "stable"


def merge_claims(path: Path, entries: list[dict], key=lambda e: e["id"]) -> list[dict]:
    """Replace (or add) `entries` by `key` in the claims.json at `path`; returns the list."""
    from rlvr.rundir.write import atomic_write_json

    claims = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    new = {key(e): e for e in entries}
    merged = [new.pop(key(c), c) for c in claims] + list(new.values())
    atomic_write_json(path, merged)
    return merged


def _context(demo: Path):
    from rlvr.study.demo import plan
    from rlvr.study.findings import layout, load_demo

    protocol = load_demo(demo)
    p = plan(protocol["quick"])
    model = "" if protocol["model"] == "shipped organism" else protocol["model"]
    return protocol, p, model, layout(demo, protocol["anchors"], protocol["seeds"])


def run_robust(demo: str | Path, *, workers: int = 2, console=None) -> dict[str, Any]:
    """Re-run every training condition at lr × LR_FACTORS; mark each training verdict."""
    from rich.console import Console

    from rlvr.analysis.claims import check_claims
    from rlvr.analysis.compute import analyze
    from rlvr.rl.presets import resolve
    from rlvr.rundir.write import atomic_write_json, new_run_dir
    from rlvr.study.demo import condition_config, run_parallel

    console = console or Console(stderr=True)
    demo = Path(demo)
    protocol, p, model, lay = _context(demo)
    base_lr = resolve("organism").optim.lr
    out = new_run_dir(demo / "robust")
    groups, folders = [], {}
    for kind in lay.training:
        labels = protocol["wrong_labels"][kind]
        for factor in LR_FACTORS:
            folders[kind, factor] = folder = out / f"{kind}-lr{factor:g}"
            for name, mode, kind_, variant in ABLATIONS:
                if variant or mode == "random":  # no training verdict reads them
                    continue
                label = None if kind_ is None else labels.get(kind_)
                if kind_ == "guessable" and label is None:
                    continue
                groups.append(([condition_config(p, examples=[lay.anchors[kind]], mode=mode,
                                        steps=p.steps, seed=s, budget=protocol["token_budget"],
                                        model=model, label=label, kind=kind_,
                                        lr=base_lr * factor) for s in lay.seeds],
                               [folder / f"{name}-s{s}" for s in lay.seeds]))
    console.print(f"robust: {len(groups)} seed groups at lr × {', '.join(map(str, LR_FACTORS))}"
                  f" (base lr {base_lr:g}), {len(lay.seeds)} seeds × {p.steps} steps")
    run_parallel(groups, workers, console, "robust", p.group_rows)
    found: dict[tuple[str, float], dict[str, dict]] = {}
    for (kind, factor), folder in folders.items():
        runs = sorted(d for d in folder.iterdir() if (d / "config.toml").is_file())
        analysis = analyze(runs, base=demo / "base", threshold=p.threshold, window=p.window)
        found[kind, factor] = {c.id: c.to_json() for c in check_claims(analysis)}
    claims = json.loads((demo / "claims.json").read_text(encoding="utf-8"))
    for row in claims:
        kind = lay.aliases.get(row.get("anchor_kind"), row.get("anchor_kind"))
        if kind not in lay.training or row["id"] not in TRAINING_CLAIMS:
            continue
        sens = [{"lr_factor": f, "lr": base_lr * f, "value": found[kind, f][row["id"]]["value"],
                 "ci": found[kind, f][row["id"]]["ci"],
                 "verdict": found[kind, f][row["id"]]["verdict"]} for f in LR_FACTORS]
        row["sensitivity"] = sens
        row["robust"] = robust_mark(row["verdict"], [s["verdict"] for s in sens])
        if row["id"] == "C1":
            row["skill_change_by_lr"] = {"1": row.get("skill_change"), **{
                f"{f:g}": found[kind, f]["C1"].get("skill_change") for f in LR_FACTORS}}
    from rlvr.rundir.write import atomic_write_json as write

    write(demo / "claims.json", claims)
    atomic_write_json(out / "robust.json", {
        "base_lr": base_lr, "factors": list(LR_FACTORS),
        "claims": {f"{k}-lr{f:g}": v for (k, f), v in found.items()}})
    return {"claims": claims}


def _clip_frac(run: Path) -> float | None:
    values = [json.loads(x).get("clip_frac") for x in
              (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _style_shares(base: Path, runs: list[Path]) -> dict[str, dict[str, float | None]]:
    """π(style) of the base and the mean over `runs` of their last evaluation."""
    from rlvr.decomposition.gain import decompose
    from rlvr.rundir.read import load_run

    base_step = load_run(base).evals[0]
    shares: dict[str, dict[str, Any]] = {}
    for path in runs:
        run = load_run(path)
        result, _ = decompose(base_step, run.evals[max(run.evals)])
        for s in (result.all.styles if result else ()):
            row = shares.setdefault(s.style, {"base": s.base[0], "trained": []})
            row["trained"].append(s.trained[0])
    return {k: {"base": v["base"], "trained": (sum(x or 0 for x in v["trained"])
                                              / len(v["trained"]))}
            for k, v in shares.items()}


def run_c10(demo: str | Path, *, workers: int = 2, console=None) -> dict[str, Any]:
    """Random reward with several mini-batches, clip 0.2 vs off (module doc)."""
    from rich.console import Console

    from rlvr.core.ablations import condition
    from rlvr.core.stats import difference, two_level
    from rlvr.rundir.write import atomic_write_json, new_run_dir
    from rlvr.study.demo import condition_config, run_parallel
    from rlvr.study.findings import claim_row, gain_estimates

    console = console or Console(stderr=True)
    demo = Path(demo)
    protocol, p, model, lay = _context(demo)
    out = new_run_dir(demo / "c10")
    anchor = lay.anchors["variance-top"]
    runs = {}
    groups = []
    for name in ("random-clip", "random-noclip"):
        variant = condition(name).variant
        runs[name] = [out / f"{name}-s{s}" for s in lay.seeds]
        groups.append(([condition_config(p, examples=[anchor], mode="random", steps=p.steps, seed=s,
                                budget=protocol["token_budget"], model=model,
                                n=max(2, p.rollout_n // 2), overlays=(variant,))
                        for s in lay.seeds], runs[name]))
    console.print(f"C10: random reward, 4 mini-batches, clip 0.2 vs off, anchor {anchor}, "
                  f"{len(lay.seeds)} seeds × {p.steps} steps")
    run_parallel(groups, workers, console, "C10", p.group_rows)
    gains = {k: gain_estimates(demo / "base", v) for k, v in runs.items()}
    diffs = [difference(a, b) for a, b in zip(gains["random-clip"], gains["random-noclip"],
                                              strict=True)]
    extra = {name: {"gain": two_level(g).points(),
                    "clip_frac": [_clip_frac(r) for r in runs[name]],
                    "style_shares": _style_shares(demo / "base", runs[name])}
             for name, g in gains.items()}
    entry = claim_row("C10", C10_TEXT, "held-out avg@k gain (points) of random reward with clip "
                   "0.2 minus with clipping off, 4 mini-batches per step, paired by seed",
                   two_level(diffs), len(lay.seeds), diffs[0].n, extra)
    entry.update(anchor=anchor, anchor_kind="variance-top")
    atomic_write_json(out / "c10.json", entry)
    merge_claims(demo / "claims.json", [entry])
    return {"claim": entry}
