"""Seconds per GRPO step: rlvr's trainer vs TRL's GRPOTrainer, same model and same work.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_step.py [--model PATH] [--steps 6]

Both engines run in this one process, one after the other, on the same model folder with the
same step: one example × `--copies` copies × `--n` completions of at most `--max-new-tokens`
tokens at temperature 1, outcome reward from rlvr's grader, GRPO advantages (std-scaled), PPO
clip 0.2, token-mean loss (TRL `loss_type="dapo"`), entropy bonus 0.001, no KL, AdamW (lr 3e-5,
no weight decay, grad clip 1), one optimizer update per step, fp32 on CPU. The first step of
each engine's run is a warm-up and is not counted; the engines alternate for `--rounds` rounds
and each keeps its best round. Without --model the benchmark uses the shipped
organism; `--eos-scale S` (or a missing organism) uses a random organism-sized Llama instead,
whose EOS row is scaled by S: 0 = responses never stop (identical work), > 0 = they stop at
scattered lengths. Tokens generated per step are reported for both engines.

The figure to quote is the ratio TRL / rlvr (seconds per step) measured in one invocation;
docs/benchmarks.md records it with the command.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fallback_model(folder: Path, eos_scale: float) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "tests"))
    from _tiny_lm import make_char_tokenizer

    tokenizer = make_char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=96, intermediate_size=256,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Sharp next-token distributions. eos_scale 0 gives EOS the logit 0: responses almost
        # never stop, so both engines do the same work. A positive scale makes EOS a random,
        # context-dependent choice: responses stop at scattered lengths, as real ones do.
        model.lm_head.weight.mul_(40.0)
        model.lm_head.weight[tokenizer.eos_token_id].mul_(eos_scale)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _model(arg: str | None, scratch: Path, eos_scale: float | None) -> tuple[str, str]:
    if arg:
        return arg, "given"
    from rlvr.organism import default_path

    if eos_scale is None and (default_path() / "config.json").is_file():
        return str(default_path()), "organism"
    scale = 0.0 if eos_scale is None else eos_scale
    return (str(_fallback_model(scratch / "tiny", scale)),
            f"random organism-sized Llama (EOS row x{scale})")


def time_rlvr(model: str, args, scratch: Path) -> tuple[list[float], list[int]]:
    from rlvr.rl.presets import resolve
    from rlvr.rl.trainer import Trainer

    config = resolve("organism", reward_mode="outcome", overrides={
        "seed": args.seed, "steps": args.steps,
        "model": {"path": model, "device": "cpu", "dtype": "float32"},
        "data": {"examples": [args.example], "copies": args.copies, "template": "raw"},
        "rollout": {"n": args.n, "temperature": 1.0, "top_p": 1.0,
                    "max_new_tokens": args.max_new_tokens, "batch_size": args.copies * args.n},
        "algo": {"adv_estimator": "grpo", "entropy_coeff": 0.001, "kl_coef": 0.0,
                 "loss_agg": "token-mean", "ppo_epochs": 1, "mini_batches": 1,
                 "clip_low": 0.2, "clip_high": 0.2},
        "optim": {"name": "adamw", "lr": 3e-5, "weight_decay": 0.0, "grad_clip": 1.0,
                  "micro_batch_size": args.copies * args.n},
    })
    trainer = Trainer(config, scratch / "rlvr_run")
    seconds, tokens = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        metrics = trainer.step()
        seconds.append(time.perf_counter() - t0)
        tokens.append(round(metrics["resp_len_mean"] * args.copies * args.n))
    return seconds, tokens


def time_trl(model: str, args, scratch: Path) -> tuple[list[float], list[int]]:
    from transformers import TrainerCallback

    spec = importlib.util.spec_from_file_location("trl_example",
                                                  ROOT / "examples" / "trl_grpo_organism.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    trainer = example.build_trainer(
        model=model, example=args.example, reward="outcome", steps=args.steps,
        out=str(scratch / "trl_run"), num_generations=args.n, copies=args.copies,
        max_completion_length=args.max_new_tokens, temperature=1.0, lr=3e-5, weight_decay=0.0,
        beta=0.0, entropy_coef=0.001, seed=args.seed, micro_batch_size=args.copies * args.n,
        disable_tqdm=True, log_level="error")
    seconds: list[float] = []

    class Clock(TrainerCallback):
        # TRL generates inside the training step, so begin→end covers rollout + update.
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            seconds.append(time.perf_counter() - self.t0)

    trainer.add_callback(Clock())
    trainer.train()
    lengths = [r["completions/mean_length"] for r in trainer.state.log_history
               if "completions/mean_length" in r]
    return seconds, [round(x * args.copies * args.n) for x in lengths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--example", default="organism-add:0")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per engine")
    parser.add_argument("--eos-scale", type=float, default=None,
                        help="use a random organism-sized model; 0 = never stop (equal work), "
                             "e.g. 1.5 = responses stop at scattered lengths")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    ours_runs, trl_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model, kind = _model(args.model, scratch, args.eos_scale)
        # Alternate the engines (A B A B): load from other processes on a shared machine then
        # hits both alike; each engine's best round is kept.
        for round_ in range(args.rounds):
            ours_runs.append(time_rlvr(model, args, scratch / f"r{round_}"))
            trl_runs.append(time_trl(model, args, scratch / f"t{round_}"))
    ours, our_tokens = min(ours_runs, key=lambda r: statistics.median(r[0][1:]))
    trl, trl_tokens = min(trl_runs, key=lambda r: statistics.median(r[0][1:]))
    ours_s, trl_s = statistics.median(ours[1:]), statistics.median(trl[1:])
    result = {
        "model": kind, "rounds": args.rounds, "steps_timed": args.steps - 1, "n": args.n, "copies": args.copies,
        "max_new_tokens": args.max_new_tokens, "threads": torch.get_num_threads(),
        "rlvr_s_per_step": round(ours_s, 4), "trl_s_per_step": round(trl_s, 4),
        "rlvr_tokens_per_step": statistics.median(our_tokens[1:]),
        "trl_tokens_per_step": statistics.median(trl_tokens[1:]) if trl_tokens[1:] else None,
        "speedup_trl_over_rlvr": round(trl_s / ours_s, 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
