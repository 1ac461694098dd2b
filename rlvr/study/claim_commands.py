"""Claims the demo does not run by itself, as commands that extend a finished demo.

    rlvr demo --claim C8 --out runs/demo     # gain vs latent skill (after `rlvr demo`)
    rlvr demo --claim C9 --out runs/demo     # gain by anchor type (after `rlvr demo`)

C8, "less latent skill, smaller gain": weaker organisms are derived from the demo's model
(`rlvr.organism.derive`: continued pretraining on working completions that are right only with
probability `work_acc`, the same mode mix). Each is evaluated once as its own base (its latent
skill measured as the accuracy inside the working style of its sampled base responses) and
trained with outcome reward from the demo's anchor and seeds. The claim's quantity is
gain(demo model) − gain(weaker), paired by seed, with a t-interval over seeds (the weakest level
when there are several). Results go to DEMO/c8/ (organisms, runs and c8.json) and the C8 entry
of DEMO/claims.json.

C9, "a good anchor is one the base partially solves with high reward variance, not the
hardest": from the demo's own history (protocol.json) the anchor types are the top-variance
anchor (the demo's; its outcome runs are reused), a random pool example (seeded), a
zero-variance one (every selection seed scored it 0: always or never solved) and the hardest
(lowest mean training accuracy). Each trains with outcome reward from every demo seed; the gain
is held-out sampled accuracy (avg@k, the demo's evaluation) at the last step minus the base's,
per seed. The claim's quantity is gain(top variance) − gain(hardest), paired by seed, with a
t-interval over seeds. Results go to DEMO/c9/ (runs and c9.json) and the C9 entry of
DEMO/claims.json.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rlvr.errors import UserError
from rlvr.study.demo import CLAIM_COMMANDS

__all__ = ["CLAIM_COMMANDS", "anchor_types", "claim_entry", "merge_claims", "run_c8", "run_c9",
           "sampled_accuracy", "working_skill"]

C8_TEXT = "less latent capability (skill) gives a smaller gain"
WORK_ACC = (0.5,)  # the weaker organisms' corpus.work_acc (the demo's model has 1.0)
C9_TEXT = ("a good anchor is one the base partially solves with high reward variance, "
           "not the hardest")


def sampled_accuracy(run: Path, step: int) -> tuple[float, int]:
    """avg@k over every suite of `run`'s evaluation at `step` (items weigh equally) and the
    number of items."""
    path = run / "eval" / f"step-{step}" / "summary.json"
    if not path.is_file():
        raise UserError(f"{run} has no evaluation at step {step}")
    suites = json.loads(path.read_text(encoding="utf-8"))["suites"]
    n = sum(s["n_items"] for s in suites.values())
    return sum(s["avg_at_k_strict"] * s["n_items"] for s in suites.values()) / n, n


def working_skill(run: Path, step: int = 0) -> tuple[float | None, int]:
    """Lenient accuracy (the right number, boxed or not) among the sampled base responses in
    the working style: the latent skill, whatever the format. And how many there were (None
    when there were none, e.g. a token budget that cuts every working chain)."""
    from rlvr.decomposition.styles import organism_style

    hits = total = 0
    for path in sorted((run / "eval" / f"step-{step}").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["sample"] > 0 and organism_style(r["response"], r["format"],
                                                  r["finish_reason"]) == "work":
                hits += bool(r["correct_lenient"])
                total += 1
    return (hits / total if total else None), total


def anchor_types(protocol: dict, seed: int = 0) -> dict[str, str]:
    """{type: pool id} from the demo's ranked candidates (see the module doc)."""
    ranked = protocol["candidates"]
    top = ranked[0]["index"]
    zero = [c for c in ranked if max(c["per_seed"]) == 0.0 and c["index"] != top]
    hardest = min((c for c in ranked if c["index"] != top),
                  key=lambda c: (c["mean_accuracy"], -c["score"]))
    out = {"top-variance": top, "hardest": hardest["index"]}
    if zero:
        out["zero-variance"] = zero[-1]["index"]
    rest = [c["index"] for c in ranked if c["index"] not in out.values()]
    if rest:
        out["random"] = random.Random(seed).choice(rest)
    return out


def claim_entry(claim_id: str, claim: str, measure: str, per_seed: list[float],
                items: int) -> dict[str, Any]:
    """One claims.json entry for a quantity predicted > 0 from its per-seed values (points),
    with the checklist's own t-interval and verdict rule (rlvr.analysis.claims)."""
    from rlvr.analysis.claims import verdict
    from rlvr.core.stats import across_seeds

    est = across_seeds([v / 100 for v in per_seed])
    points = est.points()
    return {"id": claim_id, "claim": claim, "measure": measure,
            "rule": "reproduced when > 0 with a 95% interval excluding 0; contradicted when the "
                    "interval lies at or below 0; else inconclusive",
            "value": points["value"], "ci": points["ci"], "seeds": len(per_seed),
            "items": items, "verdict": verdict(est, "positive")}


def merge_claims(path: Path, entries: list[dict]) -> list[dict]:
    """Replace (or add) `entries` by id in the claims.json at `path`; returns the new list."""
    claims = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    new = {e["id"]: e for e in entries}
    merged = [new.pop(c["id"], c) for c in claims] + list(new.values())
    from rlvr.rundir.write import atomic_write_json

    atomic_write_json(path, merged)
    return merged


def run_c9(demo: str | Path, *, workers: int = 2, console=None) -> dict[str, Any]:
    """Train the other anchor types of a finished demo and write the C9 entry (module doc)."""
    from rich.console import Console

    from rlvr.rundir.write import atomic_write_json, new_run_dir
    from rlvr.study.demo import ABLATIONS, condition_config, plan, run_parallel

    console = console or Console(stderr=True)
    demo = Path(demo)
    protocol = _load_demo(demo)
    p = plan(protocol["quick"])
    out = new_run_dir(demo / "c9")
    types = anchor_types(protocol)
    model = "" if protocol["model"] == "shipped organism" else protocol["model"]
    budget = protocol["token_budget"]
    outcome = next(name for name, mode, _ in ABLATIONS if mode == "outcome")
    runs = {"top-variance": [demo / f"{outcome}-s{s}" for s in protocol["seeds"]]}
    groups = []
    for kind, anchor in types.items():
        if kind == "top-variance":
            continue
        runs[kind] = [out / f"{kind}-s{s}" for s in protocol["seeds"]]
        groups.append(([condition_config(p, examples=[anchor], mode="outcome", steps=p.steps,
                                         seed=s, budget=budget, model=model, eval_steps=())
                        for s in protocol["seeds"]],
                       runs[kind]))
    console.print(f"C9: {len(groups)} anchor types × {len(protocol['seeds'])} seeds "
                  f"({', '.join(f'{k} {v}' for k, v in types.items())})")
    run_parallel(groups, workers, console, "anchors", p.group_rows)
    base, items = sampled_accuracy(demo / "base", 0)
    gains = {kind: [100 * (sampled_accuracy(r, p.steps)[0] - base) for r in dirs]
             for kind, dirs in runs.items()}
    entry = claim_entry("C9", C9_TEXT, "held-out avg@k gain (points) of outcome training from "
                        "the top-variance anchor minus from the hardest, paired by seed",
                        [a - b for a, b in zip(gains["top-variance"], gains["hardest"],
                                               strict=True)], items)
    from rlvr.core.stats import across_seeds

    by_type = {}
    for kind, g in gains.items():
        est = across_seeds(g)
        by_type[kind] = {"anchor": types[kind], "gains": g, "mean": est.value,
                         "low": est.low, "high": est.high}
    atomic_write_json(out / "c9.json", {"base_avg_at_k": base, "items": items,
                                        "anchor_types": by_type, "claim": entry})
    merge_claims(demo / "claims.json", [entry])
    return {"claim": entry, "anchor_types": by_type}


def _load_demo(demo: Path) -> dict:
    record = demo / "protocol.json"
    if not record.is_file():
        raise UserError(f"{demo} is not a finished demo (no protocol.json)",
                        f"run `rlvr demo --out {demo}` first")
    return json.loads(record.read_text(encoding="utf-8"))


def run_c8(demo: str | Path, *, workers: int = 2, console=None,
           work_acc: tuple[float, ...] = WORK_ACC) -> dict[str, Any]:
    """Derive weaker organisms, train them from the demo's anchor, write the C8 entry."""
    from rich.console import Console

    from rlvr.model.locate import model_path
    from rlvr.organism.derive import derive
    from rlvr.rundir.write import atomic_write_json, new_run_dir
    from rlvr.study.demo import ABLATIONS, base_eval, condition_config, plan, run_parallel

    console = console or Console(stderr=True)
    demo = Path(demo)
    protocol = _load_demo(demo)
    p = plan(protocol["quick"])
    out = new_run_dir(demo / "c8")
    model = "" if protocol["model"] == "shipped organism" else protocol["model"]
    outcome = next(name for name, mode, _ in ABLATIONS if mode == "outcome")
    levels = {"demo model": {"base": demo / "base", "model": model or "shipped organism",
                             "runs": [demo / f"{outcome}-s{s}" for s in protocol["seeds"]]}}
    groups = []
    for acc in work_acc:
        name = f"work_acc-{acc:g}"
        console.print(f"C8: deriving {name} from {model or 'the shipped organism'}")
        weak = derive(model_path(model), out / name, work_acc=acc,
                      steps=5 if protocol["quick"] else 400)
        configs = [condition_config(p, examples=[protocol["anchor"]], mode="outcome",
                                    steps=p.steps, seed=s, budget=protocol["token_budget"],
                                    model=str(weak), eval_steps=())
                   for s in protocol["seeds"]]
        base_eval(configs[0], str(weak), out / f"{name}-base")
        runs = [out / f"{name}-s{s}" for s in protocol["seeds"]]
        levels[name] = {"base": out / f"{name}-base", "model": str(weak), "runs": runs}
        groups.append((configs, runs))
    run_parallel(groups, workers, console, "weaker organisms", p.group_rows)
    rows = {}
    for name, level in levels.items():
        base, items = sampled_accuracy(level["base"], 0)
        skill, n = working_skill(level["base"])
        rows[name] = {"model": level["model"], "working_skill": skill, "working_samples": n,
                      "base_avg_at_k": base,
                      "gains": [100 * (sampled_accuracy(r, p.steps)[0] - base)
                                for r in level["runs"]]}
    weakest = list(rows)[-1]
    skills = " vs ".join(_fmt(rows[k]["working_skill"]) for k in (weakest, "demo model"))
    entry = claim_entry("C8", C8_TEXT, "held-out avg@k gain (points) of outcome training on "
                        f"the demo's model minus on the {weakest} organism (working skill "
                        f"{skills}), same anchor, paired by seed",
                        [a - b for a, b in zip(rows["demo model"]["gains"],
                                               rows[weakest]["gains"], strict=True)], items)
    atomic_write_json(out / "c8.json", {"levels": rows, "claim": entry})
    merge_claims(demo / "claims.json", [entry])
    return {"claim": entry, "levels": rows}


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.2f}"
