"""How close the organism's decode and update come to this CPU's matrix-product ceiling.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/roofline.py [--json] [--quick]

One process, one torch thread, fp32:

(a) the ceiling: `F.linear` at the organism's own shapes (its fused q/k/v, output, gate/up and
    down projections at 16, 64, 128 and a GRPO group's ~1,000 rows, plus 1024³), each the best
    of ≥ 50 calls (≈ 4 GFLOP a shape), and at the same shapes the decode step's own products
    (`native_step.panel_product_function`, weights packed once): whichever is faster counts, so
    a faster product of ours raises the ceiling it is judged against. The ceiling is the best
    of those rates.
(b) achieved GFLOP/s, model FLOPs counted analytically (below) over measured seconds:
    - `decode`: the decode loop (`rlvr.model.decode.decode` through `policy.make_decoder`, so
      the path the rollout uses: prefill, then per token the model step, the keyed sampling and
      the bookkeeping) of R distinct 12-token prompts × `--new` tokens at temperature 1, no row
      stopping, R = 16, 64, 128; best of `--rounds`, after one warm-up call (which includes any
      compile);
    - `update`: the trainer's scoring forward + backward (`policy.response_stats` with entropy,
      then `backward`) of one GRPO step's 16 responses, sampled by the organism preset, from
      cleared gradients (the clearing, ~0.25 ms, is the optimizer step's and not timed);
    - `products_only_64`: the decode step's matrix products alone at 64 rows (its 17 calls
      in order, one weight each, the attention of a mean-context step counted but not run):
      what `decode_64` would reach if everything between the products were free, its bound;
    - `step`: one whole `Trainer.step()` of the organism preset (rollout, reward, reference
      forward, forward + backward, AdamW), median of the steps after a warm-up.
    Each is also given as a fraction of (a).

Model FLOPs (a multiply-add = 2 FLOPs). With hidden E, layers L, heads H, K/V heads Hkv, head
dim D, MLP width I and vocabulary V, one token that attends to c keys costs in the forward
    F(c) = 2·L·(E·(H + 2·Hkv)·D + H·D·E + 3·E·I) + 4·L·H·D·c  [+ 2·E·V when its logits are made];
the prefill makes logits at the last prompt position only, a decode step at every row, the
scoring forward at response positions only; the backward costs 2× its forward. The shared
prompt of a GRPO group is counted once (the forward computes it once), pads never. Norms,
rotary, softmax, sampling and the optimizer are not counted: they are the overhead.

The 1-min load average (`os.getloadavg`) is read beside every figure; a figure taken at a load
above 1.5 is marked `"loaded": true` (another process shared the CPU: its rate is a floor).
The machine's pace also moves without any load of ours (up to 2x within seconds: a tenant on
the core's sibling thread), so short ceiling probes (the scan's two best shapes, best of 100
calls) run between every figure's rounds: `ceiling_gflops` is the best of the scan and all
probes, `fraction` each figure against it (the strict reading), and `fraction_beside` each
figure against the best probe of its own rounds (`detail[...]["ceiling_beside"]`): the same
seconds, so the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

LOADED = 1.5


def _load() -> dict:
    load = os.getloadavg()[0]
    return {"load": round(load, 2), "loaded": load > LOADED}


def _dims(model) -> dict:
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return {"E": c.hidden_size, "L": c.num_hidden_layers, "H": c.num_attention_heads,
            "Hkv": c.num_key_value_heads, "D": head_dim, "I": c.intermediate_size,
            "V": c.vocab_size}


def token_flops(d: dict, keys: int, logits: bool) -> int:
    """F(c) of the module docstring: one token's forward FLOPs attending to `keys` keys."""
    proj = d["E"] * (d["H"] + 2 * d["Hkv"]) * d["D"] + d["H"] * d["D"] * d["E"] + 3 * d["E"] * d["I"]
    out = 2 * d["L"] * proj + 4 * d["L"] * d["H"] * d["D"] * keys
    return out + (2 * d["E"] * d["V"] if logits else 0)


class Beside:
    """Short ceiling probes taken between a figure's rounds. This 2-vCPU machine changes pace
    by up to 2x within seconds (another tenant on the core's sibling thread), so a ceiling
    measured a minute earlier can sit in another state than the figure: each figure is also
    given against the best probe of its own rounds (`ceiling_beside`), the same seconds."""

    def __init__(self, scan: dict, calls: int):
        import torch

        top = sorted(scan["shapes"], key=scan["shapes"].get, reverse=True)[:2]
        self.shapes = [tuple(int(n) for n in shape.split("x")) for shape in top]
        self.products = [_product(torch.randn(r, i), torch.randn(o, i), scan["kernel"][shape])
                         for (r, i, o), shape in zip(self.shapes, top, strict=True)]
        self.calls, self.window, self.best = calls, [], scan["gflops"]

    def probe(self) -> None:
        rate = max(2 * r * i * o / _best(product, self.calls) / 1e9
                   for (r, i, o), product in zip(self.shapes, self.products, strict=True))
        self.window.append(rate)
        self.best = max(self.best, rate)

    def take(self) -> float:
        """The best probe since the last `take`."""
        found, self.window = max(self.window), []
        return round(found, 1)


def _best(fn, repeats: int, beside: Beside | None = None, every: int = 1,
          before=None) -> float:
    """The fastest of `repeats` timed calls of `fn`; `before()` (untimed) runs ahead of each."""
    best = float("inf")
    for k in range(repeats):
        if beside is not None and k % every == 0:
            beside.probe()
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _product(x, w, kernel: str):
    """A call of x @ w^T by `kernel`: "linear" (F.linear) or "panels" (the decode step's own
    product, its weight packed once beforehand, as the step packs it once per decode)."""
    import torch.nn.functional as F

    if kernel == "linear":
        return lambda: F.linear(x, w)
    from rlvr.model import native_step

    product = native_step.panel_product(w.t())
    return lambda: product(x)


def _kernels() -> list[str]:
    import torch

    from rlvr.model import native_step

    has_panels = native_step.panel_product(torch.zeros(1, 1)) is not None
    return ["linear"] + (["panels"] if has_panels else [])


def ceiling(d: dict, quick: bool) -> dict:
    import torch

    E, mlp, qkv = d["E"], d["I"], (d["H"] + 2 * d["Hkv"]) * d["D"]
    shapes = [(rows, i, o) for rows in (16, 64, 128, 1024)
              for i, o in ((E, qkv), (d["H"] * d["D"], E), (E, 2 * mlp), (mlp, E))]
    if not quick:
        shapes.append((1024, 1024, 1024))
    rates, by_kernel, best_kernel = {}, {k: {} for k in _kernels()}, {}
    for rows, i, o in shapes:
        x, w = torch.randn(rows, i), torch.randn(o, i)
        # ≈ 4 GFLOP (50 ms) a shape and never under 50 calls: the best of few calls moved
        # by ±10 % with the machine's state and once fell below the decode step's own
        # products (products_only_64 above 1)
        calls = 2 if quick else max(50, int(2e9 // (rows * i * o)))
        shape = f"{rows}x{i}x{o}"
        for kernel in by_kernel:
            seconds = _best(_product(x, w, kernel), calls)
            by_kernel[kernel][shape] = round(2 * rows * i * o / seconds / 1e9, 1)
        best_kernel[shape] = max(by_kernel, key=lambda k, shape=shape: by_kernel[k][shape])
        rates[shape] = by_kernel[best_kernel[shape]][shape]
    return {"gflops": max(rates.values()), "shapes": rates, "kernel": best_kernel,
            "by_kernel": by_kernel, **_load()}


def products_only(d: dict, rows: int, keys: int, calls: int, beside: Beside) -> dict:
    """A decode step's matrix products alone at `rows` rows, in the step's order with one
    weight per layer and projection (so weights stream from cache as in the step), by the
    step's own kernel (its panels where it has them, else `at::mm`): the rate decode would
    reach if everything between the products were free, a step attending to `keys` keys (its
    attention counted as free work). The upper bound of `decode_<rows>`."""
    import torch

    E, mlp, width = d["E"], d["I"], (d["H"] + 2 * d["Hkv"]) * d["D"]
    kernel = _kernels()[-1]
    layers = [[_product(x, w, kernel) for x, w in (
        (torch.randn(rows, E), torch.randn(width, E)),
        (torch.randn(rows, d["H"] * d["D"]), torch.randn(E, d["H"] * d["D"])),
        (torch.randn(rows, E), torch.randn(2 * mlp, E)),
        (torch.randn(rows, mlp), torch.randn(E, mlp)))] for _ in range(d["L"])]
    head = _product(torch.randn(rows, E), torch.randn(d["V"], E), kernel)

    def step():
        for products in layers:
            for product in products:
                product()
        head()
    step()
    seconds = _best(step, calls, beside, every=max(1, calls // 10))
    return {"gflops": round(rows * token_flops(d, keys, True) / seconds / 1e9, 2),
            "ms_per_token": round(1e3 * seconds, 3), "ceiling_beside": beside.take(), **_load()}


PROMPT = 12


def decode_loop(model, rows: int, new: int):
    """One call of the rollout's decode loop as `decode` times it: `rows` distinct random
    prompts of PROMPT tokens (no prefill dedup), `new` tokens each, no row stopping."""
    import torch

    from rlvr.model.decode import decode, row_keys
    from rlvr.model.policy import make_decoder
    from rlvr.model.sampling import SamplingParams

    gen = torch.Generator().manual_seed(rows)
    ids = torch.randint(3, model.config.vocab_size, (rows, PROMPT), generator=gen)
    mask, positions = torch.ones_like(ids), torch.arange(PROMPT).expand(rows, PROMPT)
    params = SamplingParams(temperature=1.0, max_new_tokens=new, seed=0)
    keys = row_keys(0, [(0, r) for r in range(rows)], "cpu")

    def run():
        with torch.inference_mode():
            decoder = make_decoder(model, rows, PROMPT + new)
            out = decode(decoder, ids, mask, positions, keys, params, eos=(-1,), pad_id=0)
        assert all(len(t) == new for t, _ in out)
    return run


def decode_rate(model, d: dict, rows: int, new: int, rounds: int, beside: Beside) -> dict:
    prompt, run = PROMPT, decode_loop(model, rows, new)
    t0 = time.perf_counter()
    run()  # warm-up (compiles, if the decoder compiles)
    warm = time.perf_counter() - t0
    seconds = _best(run, rounds, beside)
    flops = rows * (sum(token_flops(d, c, False) for c in range(1, prompt + 1))
                    + 2 * d["E"] * d["V"]  # the prefill's last-position logits
                    + sum(token_flops(d, prompt + s, True) for s in range(1, new)))
    return {"gflops": round(flops / seconds / 1e9, 2), "ms_per_token": round(1e3 * seconds / new, 3),
            "first_call_s": round(warm, 2), "ceiling_beside": beside.take(), **_load()}


def _trainer(scratch: Path, steps: int):
    from rlvr.rl.presets import resolve
    from rlvr.rl.trainer import Trainer

    config = resolve("organism", reward_mode="outcome", overrides={
        "seed": 0, "steps": steps, "data": {"examples": ["organism-add:0"]},
        "eval": {"suites": []}, "log": {"samples_every": 0}})
    return Trainer(config, scratch)


def group_flops(d: dict, batch, rows) -> tuple[int, int]:
    """Forward FLOPs of scoring `rows` of a Batch: (shared prompt once + responses)."""
    prompt = int(batch.attention[0, :batch.input_ids.shape[1] - batch.tokens.shape[1]].sum())
    flops = sum(token_flops(d, c, False) for c in range(1, prompt + 1))
    tokens = 0
    for r in rows.tolist():
        n = int(batch.mask[r].sum())
        tokens += n
        flops += sum(token_flops(d, prompt + s, True) for s in range(1, n + 1))
    return flops, tokens


def update_rate(trainer, d: dict, rounds: int, beside: Beside) -> dict:
    import torch

    from rlvr.model.policy import response_stats

    batch = trainer._rollout(1)
    rows = torch.arange(len(batch.completions))

    def run():
        logp, ent = response_stats(trainer.model, batch.input_ids, batch.attention, batch.tokens,
                                   batch.mask.bool(), temperature=1.0, entropy=True)
        (logp.sum() + 0.001 * ent.sum()).backward()

    def clear():
        # the optimizer's business (the trainer's step clears them once per step), not the
        # forward's or the backward's: each timed backward then starts, as in training, from
        # no gradients
        trainer.model.zero_grad(set_to_none=True)
    run()
    seconds = _best(run, rounds, beside, before=clear)
    clear()  # the trainer's steps that follow start from none
    forward, tokens = group_flops(d, batch, rows)
    return {"gflops": round(3 * forward / seconds / 1e9, 2), "ms": round(1e3 * seconds, 2),
            "response_tokens": tokens, "ceiling_beside": beside.take(), **_load()}


def step_rate(trainer, d: dict, steps: int, beside: Beside) -> dict:
    import torch

    captured = []
    rollout = trainer._rollout

    def keep(step):
        captured.append(rollout(step))
        return captured[-1]
    trainer._rollout = keep
    seconds, flops = [], []
    for _ in range(steps):
        beside.probe()
        t0 = time.perf_counter()
        trainer.step()
        seconds.append(time.perf_counter() - t0)
        b = captured[-1]
        forward, _ = group_flops(d, b, torch.arange(len(b.completions)))
        # the rollout ≈ one forward of the same tokens; the reference's forward; the policy's
        # forward + backward
        flops.append(forward * (1 + (trainer.ref is not None) + 3))
    rates = [f / s for f, s in zip(flops[1:], seconds[1:], strict=True)]
    return {"gflops": round(statistics.median(rates) / 1e9, 2),
            "s": round(statistics.median(seconds[1:]), 3), "ceiling_beside": beside.take(),
            **_load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--model", help="a model folder (default: the shipped organism)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from rlvr.model import native_step
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    model, _ = load_model(args.model or default_path(), device="cpu")
    d = _dims(model)
    rounds, new, steps = (1, 4, 2) if args.quick else (10, 48, 6)
    top = ceiling(d, args.quick)
    beside = Beside(top, 2 if args.quick else 100)
    detail = {"ceiling": top}
    for rows in (16, 64, 128):
        detail[f"decode_{rows}"] = decode_rate(model, d, rows, new, rounds, beside)
    # the decode loop's mean context: 12 prompt tokens, then half the new ones
    detail["products_only_64"] = products_only(d, 64, 12 + new // 2, 20 if args.quick else 300,
                                               beside)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer(Path(tmp) / "run", steps)
        detail["update"] = update_rate(trainer, d, rounds, beside)
        detail["step"] = step_rate(trainer, d, steps, beside)
    # the ceiling: the best rate of the opening scan and of every probe since
    best = round(beside.best, 1)
    figures = {k: v for k, v in detail.items() if k != "ceiling"}
    result = {"ceiling_gflops": best,
              "decode": {str(r): detail[f"decode_{r}"]["gflops"] for r in (16, 64, 128)},
              "update": detail["update"]["gflops"], "step": detail["step"]["gflops"],
              "fraction": {k: round(v["gflops"] / best, 3) for k, v in figures.items()},
              "fraction_beside": {k: round(v["gflops"] / v["ceiling_beside"], 3)
                                  for k, v in figures.items()},
              "load": {k: v["load"] for k, v in detail.items()},
              "loaded": sorted(k for k, v in detail.items() if v["loaded"]),
              "threads": torch.get_num_threads(),
              "fast_decode": os.environ.get("RLVR_FAST_DECODE", "1"),
              "decode_cache": str(native_step.cache_dtype()).removeprefix("torch."),
              "detail": detail}
    if args.json:
        print(json.dumps(result))
        return
    print(f"ceiling {best} GFLOP/s (opening scan {top['gflops']}, load {top['load']})")
    for key, value in figures.items():
        mark = " (load > 1.5)" if value["loaded"] else ""
        print(f"{key:>16}: {value['gflops']:7.2f} GFLOP/s = {result['fraction'][key]:.2f} of the "
              f"ceiling, {result['fraction_beside'][key]:.2f} of the {value['ceiling_beside']} "
              f"beside it, load {value['load']}{mark}")


if __name__ == "__main__":
    main()
