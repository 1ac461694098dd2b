"""The organism card: what a built organism does, measured by code on held-out problems.

Per family: greedy and sampled accuracy (strict and lenient, via `rlvr.grading.grade`), the
mode frequencies (from `classify_mode`), accuracy within each mode, boxed / unboxed /
repetition / truncation rates, and the exact probability of each mode's opening token. Written
beside the checkpoint as `card.json` (the numbers) and `card.md` (the same, for people).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rlvr.errors import UserError
from rlvr.organism.config import BuildConfig, CardConfig
from rlvr.organism.modes import MARKERS, MODES, classify_mode
from rlvr.organism.tasks import HELDOUT_BUCKETS, heldout_suite, shortcut_share
from rlvr.rundir.write import atomic_write_json, atomic_write_text

__all__ = ["complete", "family_stats", "load_card", "measure_card", "mode_probs", "render_card",
           "write_card"]

KINDS = (*MODES, "other")


@torch.no_grad()
def complete(model, tokenizer, prompts: list[str], *, temperature: float | None,
             max_new_tokens: int, seed: int = 0) -> list[tuple[str, str]]:
    """(completion, finish_reason) per prompt; `temperature=None` decodes greedily."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    sampling = {"do_sample": False} if temperature is None else {
        "do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    torch.manual_seed(seed)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, **sampling)
    results = []
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        ended = tokenizer.eos_token_id in row
        row = row[: row.index(tokenizer.eos_token_id)] if ended else row
        results.append((tokenizer.decode(row, skip_special_tokens=True), "stop" if ended else "length"))
    return results


@torch.no_grad()
def mode_probs(model, tokenizer, prompts: list[str]) -> dict[str, float]:
    """Mean probability of each mode's first marker character after the prompt (exact, no sampling)."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    logits = model(**enc).logits[:, -1, :]  # (B, V): left padding puts every prompt's end last
    probs = torch.softmax(logits.float(), dim=-1).mean(0)  # (V,)
    return {m: round(float(probs[tokenizer.convert_tokens_to_ids(MARKERS[m][0])]), 4) for m in MODES}


def family_stats(completions: list[tuple[str, str]], golds: list[str]) -> dict[str, Any]:
    """Accuracy, mode frequencies, accuracy within each mode and format rates of one sample set."""
    from rlvr.grading import grade

    n = len(completions)
    rows = []
    for (text, finish), gold in zip(completions, golds, strict=True):
        g = grade(text, gold, finish_reason=finish)
        rows.append((classify_mode(text), g.format, g.correct_strict, g.correct_lenient))
    in_mode = {}
    for kind in KINDS:
        hits = [r for r in rows if r[0] == kind]
        if hits:
            in_mode[kind] = {"n": len(hits), "strict": round(sum(r[2] for r in hits) / len(hits), 4),
                             "lenient": round(sum(r[3] for r in hits) / len(hits), 4)}
    formats = sorted({r[1] for r in rows})
    rate = lambda pred: round(sum(1 for r in rows if pred(r)) / n, 4)  # noqa: E731
    return {
        "n": n,
        "acc_strict": rate(lambda r: r[2]),
        "acc_lenient": rate(lambda r: r[3]),
        "modes": {k: rate(lambda r, k=k: r[0] == k) for k in KINDS},
        "acc_in_mode": in_mode,
        "format_rates": {f: rate(lambda r, f=f: r[1] == f) for f in formats},
        "boxed_rate": rate(lambda r: r[1] == "boxed"),
        "unboxed_rate": rate(lambda r: r[1] == "unboxed"),
        "repetition_rate": rate(lambda r: r[1] == "repetition"),
        "truncation_rate": rate(lambda r: r[1] in ("truncated", "repetition")),
    }


def measure_family(model, tokenizer, family: str, cfg: CardConfig) -> dict[str, Any]:
    suite = heldout_suite(family, n=cfg.n, seed=cfg.seed)
    prompts, golds = [p.problem for p in suite], [p.answer for p in suite]
    greedy = complete(model, tokenizer, prompts, temperature=None, max_new_tokens=cfg.max_new_tokens)
    sampled = complete(model, tokenizer, prompts, temperature=cfg.temperature,
                       max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    return {"mode_probs": mode_probs(model, tokenizer, prompts),
            # What a perfectly learnt guess would score on this suite: the guess mode's ceiling.
            "shortcut_share": round(shortcut_share(suite), 4),
            "greedy": family_stats(greedy, golds), "sampled": family_stats(sampled, golds),
            "examples": {"greedy": greedy[0][0], "sampled": [t for t, _ in sampled[:4]]}}


def measure_card(model, tokenizer, config: BuildConfig, info: dict[str, Any], *,
                 progress: bool = False) -> dict[str, Any]:
    cfg = config.card
    families = {}
    for family in config.families:
        if progress:
            print(f"measuring the card: {family} ({cfg.n} held-out problems)", flush=True)
        families[family] = measure_family(model, tokenizer, family, cfg)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "seed": config.seed,
        **info,
        "eval": {"n_per_family": cfg.n, "suite_seed": cfg.seed, "sampling_seed": cfg.seed,
                 "samples_per_problem": 1, "temperature": cfg.temperature, "top_p": 1.0,
                 "max_new_tokens": cfg.max_new_tokens,
                 "heldout": f"bucket 0 of {HELDOUT_BUCKETS} of a blake2b hash of family:operands"},
        "families": families,
        "config": config.to_dict(),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def render_card(card: dict[str, Any]) -> str:
    ev = card["eval"]
    lines = [
        "# Organism card", "",
        f"- parameters: {card['params']:,}; build seed {card['seed']}; pretraining took "
        f"{card['build_seconds']} s on {card['threads']} thread(s); final loss {card['final_loss']}",
        f"- measured on {ev['n_per_family']} held-out problems per family (suite seed "
        f"{ev['suite_seed']}): greedy, and 1 sample each at temperature {ev['temperature']} "
        f"(sampling seed {ev['sampling_seed']}), at most {ev['max_new_tokens']} new tokens",
        "- modes: work = working + `\\boxed{}`, guess = direct `\\boxed{}`, unboxed = working + "
        "`answer N`, loop = repetition that never ends", "",
        "| family | greedy strict | greedy lenient | sampled strict | sampled lenient | boxed | "
        "unboxed | repetition | P(work/guess/unboxed/loop) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, fam in card["families"].items():
        g, s = fam["greedy"], fam["sampled"]
        probs = "/".join(f"{fam['mode_probs'][m]:.2f}" for m in MODES)
        lines.append(f"| {name} | {_pct(g['acc_strict'])} | {_pct(g['acc_lenient'])} | "
                     f"{_pct(s['acc_strict'])} | {_pct(s['acc_lenient'])} | {_pct(s['boxed_rate'])} | "
                     f"{_pct(s['unboxed_rate'])} | {_pct(s['repetition_rate'])} | {probs} |")
    lines += ["", "Sampled: mode frequency, and lenient accuracy within the mode (n). Shortcut share: "
              "the problems a carry-free guess gets right (the guess mode's ceiling).", "",
              "| family | " + " | ".join(KINDS) + " | greedy mode | shortcut share |",
              "|---" * (len(KINDS) + 3) + "|"]
    for name, fam in card["families"].items():
        s = fam["sampled"]
        cells = []
        for k in KINDS:
            within = s["acc_in_mode"].get(k)
            acc = f"{_pct(within['lenient'])} of {within['n']}" if within else "-"
            cells.append(f"{_pct(s['modes'][k])} ({acc})")
        greedy_mode = max(fam["greedy"]["modes"], key=fam["greedy"]["modes"].get)
        share = fam.get("shortcut_share")
        share = "-" if share is None else _pct(share)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {greedy_mode} | {share} |")
    return "\n".join(lines) + "\n"


def write_card(folder: str | Path, card: dict[str, Any]) -> None:
    folder = Path(folder)
    atomic_write_json(folder / "card.json", card)
    atomic_write_text(folder / "card.md", render_card(card))


def load_card(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "card.json"
    if not path.is_file():
        raise UserError(f"{folder} has no card.json", "give an organism folder made by `rlvr organism build`")
    return json.loads(path.read_text(encoding="utf-8"))
