"""GPU check: the paper's shapes through the native engine and TRL on one GPU, bounded in time.

    PYTHONPATH=. python benchmarks/gpu_check.py --out $OUT/gpu_check      # one GPU, < 10 min
    PYTHONPATH=. python benchmarks/gpu_check.py --cpu-smoke --out /tmp/gc # the script itself

For a bare GPU machine without network: the image's torch (>= 2.11) and transformers
(>= 5.17), the project from source (`PYTHONPATH=.`), nothing downloaded. The model is a
randomly initialised Qwen2.5-Math-1.5B-shaped Qwen2 (28 layers, hidden 1536, 12 / 2 heads, MLP
8960, vocabulary 151,936, tied embeddings) with a synthetic tokenizer; it almost never emits
EOS, so every response is full length (the worst case). TRL (with accelerate and datasets)
travels as wheels; without it that phase says "skipped" and why. vLLM is too large to carry:
the colocate path is checked where vLLM is installed (the TRL phase uses it when importable).

Phases, each in its own process under its own time limit (one that overruns is killed and
reported; the others still run):
- native-rollout: rlvr's sampler (fast_lm, bf16 autocast, bf16 K/V cache), `--rollout-seqs`
  sequences at once (the paper preset's rollout.batch_size, 256) × `--max-new-tokens` (3072);
- native-update: one GRPO update of the paper preset (gradient checkpointing, chunked
  log-probs over real tokens, micro-batch 8, the KL reference model) on `--update-seqs` of
  those responses;
- trl: one `rlvr train --engine trl` step (rlvr.rl.trl_engine) of `--trl-seqs` responses. With
  vLLM installed this is the colocate phase: vLLM generation (tokens/s), its wake-ups and
  sleeps, the weight sync and one update are timed apart. Without vLLM, TRL generates with
  HF `generate`: what it measured is reported, labelled so, and no paper step is projected
  from it (HF generate is not how a paper run generates).
Each phase reports its peak CUDA memory beside `rlvr train --plan`'s figure for the same
shapes (rlvr.rl.plan, at the prompt and response lengths the phase had). The summary projects
seconds per paper step (1,024 responses × 3,072 tokens) from the native phases and from the
vLLM colocate phase, linearly in responses (assumptions listed in the output). Prints one
JSON object and writes `<out>/gpu_check.json`; docs/benchmarks.md says how to record it.
Exit 1 without a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAPER_RESPONSES, PAPER_NEW_TOKENS = 1024, 3072
QWEN25_MATH_15B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                       num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                       max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True)
# --cpu-smoke: the same phases on a model small enough to check the script on a CPU.
SMOKE = dict(QWEN25_MATH_15B, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
PROBLEM = {"id": "0", "problem": "What is 17 + 25? Put the answer in \\boxed{}.", "answer": "42"}


def make_model(folder: Path, shape: dict, device: str) -> Path:
    """A random Qwen2 of `shape` and a character tokenizer padded to its vocabulary."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<eos>", "<unk>"] + chars)}
    for i in range(len(vocab), shape["vocab_size"]):
        vocab[f"<t{i}>"] = i  # filler ids so the embedding has the real model's size
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>",
                                        eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = Qwen2Config(**shape, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    with torch.device(device):  # initialised where it runs: 1.5B on a CPU takes a while
        model = Qwen2ForCausalLM(config).to(torch.bfloat16 if device == "cuda" else None)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder.parent / "train.jsonl").write_text(json.dumps(PROBLEM) + "\n")
    return folder


def paper_config(model: Path, responses: int, args, *, micro: int = 8):
    """The paper preset on the random model, `responses` per step (copies × 8)."""
    from rlvr.rl.presets import resolve

    device = "cpu" if args.cpu_smoke else "cuda"
    return resolve("paper", overrides={
        "steps": 1, "model": {"path": str(model), "device": device,
                              "dtype": "float32" if args.cpu_smoke else "auto"},
        "data": {"train_file": str(model.parent / "train.jsonl"), "copies": responses // 8,
                 "template": "raw"},
        "rollout": {"max_new_tokens": args.max_new_tokens, "batch_size": args.rollout_seqs},
        "optim": {"micro_batch_size": min(micro, responses)}, "eval": {"suites": []},
        "log": {"save_every": 0, "samples_every": 0, "snapshot_steps": []}})


class _Clock:
    """Wall seconds and peak GPU memory of a block (synchronised on CUDA)."""

    def __init__(self, device: str):
        import torch

        self.torch, self.cuda = torch, device == "cuda"

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start
        self.peak_gib = (self.torch.cuda.max_memory_allocated() / 2**30) if self.cuda else None
        return False


def phase_native(args) -> dict:
    """Rollout of --rollout-seqs sequences, then one update on --update-seqs of them."""
    import torch

    from rlvr.rl.trainer import Trainer

    model = Path(args.out) / "model"
    device = "cpu" if args.cpu_smoke else "cuda"
    trainer = Trainer(paper_config(model, args.rollout_seqs, args), Path(args.out) / "native")
    with _Clock(device) as roll:
        batch = trainer._rollout(1)
    tokens = int(batch.mask.sum())
    rows = torch.arange(min(args.update_seqs, len(batch.completions)), device=batch.mask.device)
    advantages = torch.randn(len(batch.completions), generator=torch.Generator().manual_seed(0))
    with _Clock(device) as update:
        trainer._update(batch, advantages.to(batch.mask.device), rows)
    update_tokens = int(batch.mask[rows].sum())
    plan = _native_plan(trainer, batch, len(rows), args)
    return {"plan_vs_measured_gib": {
                "rollout": {"plan": plan["rollout"], "measured": _round(roll.peak_gib)},
                "update": {"plan": plan["update"], "measured": _round(update.peak_gib)},
                "note": "plan at this phase's lengths; the rollout ran before any update, so "
                        "its plan leaves out the gradients and optimizer moments"},
            "rollout_seqs": len(batch.completions), "rollout_tokens": tokens,
            "rollout_s": round(roll.seconds, 2), "rollout_tokens_per_s": round(tokens / roll.seconds, 1),
            "rollout_peak_gib": _round(roll.peak_gib), "update_seqs": len(rows),
            "update_tokens": update_tokens, "update_s": round(update.seconds, 2),
            "update_tokens_per_s": round(update_tokens / update.seconds, 1),
            "update_peak_gib": _round(update.peak_gib),
            "resp_len_mean": round(tokens / len(batch.completions), 1)}


def _native_plan(trainer, batch, update_seqs: int, args) -> dict:
    """`rlvr train --plan`'s GiB for what this phase ran (first step: no moments yet)."""
    import dataclasses

    from rlvr.rl.plan import Gpu, make_plan, read_shape

    cfg = trainer.config
    real = dataclasses.replace(cfg, rollout=dataclasses.replace(
        cfg.rollout, max_prompt_tokens=max(len(ids) for ids in trainer.prompt_ids),
        max_new_tokens=max(1, int(batch.mask.sum(-1).max()))))
    gpu = None if args.cpu_smoke else Gpu("this GPU", 1e9, 989.0, 3.35)
    plan = make_plan(real, read_shape(Path(args.out) / "model"), engine="native", gpu=gpu,
                     out=None)
    rollout = dict(plan.memory["rollout"])
    rollout.pop("gradients", None)
    rollout.pop("optimizer", None)
    return {"rollout": round(sum(rollout.values()), 3),
            "update": round(sum(plan.memory["update"].values()), 3)}


def phase_trl(args) -> dict:
    """One `--engine trl` step of --trl-seqs responses (vLLM colocate when importable)."""
    import importlib.util
    import tempfile

    missing = [m for m in ("trl", "accelerate", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"not installed: {', '.join(missing)} (bring them as wheels)"}
    from rlvr.rl.trl_engine import build_trainer

    device = "cpu" if args.cpu_smoke else "cuda"
    cfg = paper_config(Path(args.out) / "model", args.trl_seqs, args)
    with tempfile.TemporaryDirectory() as scratch:
        trainer, recorder = build_trainer(cfg, Path(args.out) / "trl", scratch)
        recorder.log = _MetricsSink()
        timers = _time_vllm(trainer)
        with _Clock(device) as step:
            trainer.train()
        free, total = _device_memory(device)
    metrics = recorder.log.lines[-1]
    vllm = bool(recorder.grpo_config.get("use_vllm"))
    out = {"vllm": vllm, "generation": "vLLM colocate" if vllm else "HF generate (not the "
           "paper's way: no paper step is projected from it)", "responses": args.trl_seqs,
           "step_s": round(step.seconds, 2), "step_tokens_per_s": round(
               metrics["tokens_per_s"], 1), "resp_len_mean": metrics["resp_len_mean"],
           "peak_gib": _round(step.peak_gib),
           "device_used_gib_after": None if free is None else round((total - free) / 2**30, 1)}
    if vllm:
        tokens = int(metrics["resp_len_mean"] * args.trl_seqs)
        out.update({k: round(v, 2) for k, v in timers.items()})
        out["generation_tokens"] = tokens
        out["generation_tokens_per_s"] = round(tokens / max(timers["generate_s"], 1e-9), 1)
        out["update_s"] = round(step.seconds - sum(timers.values()), 2)
        from rlvr.rl.plan import detect_gpu, make_plan, read_shape

        plan = make_plan(cfg, read_shape(Path(args.out) / "model"), engine="trl",
                         gpu=detect_gpu(None), out=None, vllm_share=cfg.rollout.vllm_memory)
        out["plan_vs_measured_gib"] = {
            "generate": {"plan": round(sum(plan.memory["generate"].values()), 1),
                         "measured_device_used": out["device_used_gib_after"]},
            "update": {"plan": round(sum(plan.memory["update"].values()), 1),
                       "measured_torch_peak": out["peak_gib"]},
            "note": "vLLM's pool is outside torch's allocator stats: the generate phase is "
                    "read from the device's used memory"}
    return out


def _time_vllm(trainer) -> dict:
    """Seconds in TRL's colocated vLLM, by kind (wrapped on the instance; {} without vLLM)."""
    gen = getattr(trainer, "vllm_generation", None)
    if gen is None or getattr(gen, "mode", None) != "colocate":
        return {}
    timers = {"generate_s": 0.0, "weight_sync_s": 0.0, "sleep_wake_s": 0.0}

    def timed(owner, name, key):
        inner = getattr(owner, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                timers[key] += time.perf_counter() - t0
        setattr(owner, name, wrapper)

    timed(gen, "sync_weights", "weight_sync_s")
    timed(gen.llm, "generate", "generate_s")
    timed(gen.llm, "sleep", "sleep_wake_s")
    timed(gen.llm, "wake_up", "sleep_wake_s")
    return timers


def _device_memory(device: str):
    if device != "cuda":
        return None, None
    import torch

    return torch.cuda.mem_get_info()


class _MetricsSink:
    """Stands in for the run log: the check keeps the metrics and writes no run directory."""

    def __init__(self):
        self.lines: list[dict] = []

    def step(self, metrics: dict) -> None:
        self.lines.append(metrics)

    def samples(self, records) -> None:
        return None

    def evaluation(self, step, summary) -> None:
        return None

    def close(self) -> None:
        return None


def _round(value):
    return None if value is None else round(value, 1)


def extrapolate(native: dict, trl: dict, new_tokens: int) -> dict:
    """Seconds per paper step (1,024 responses × 3,072 new tokens), linear in responses and,
    when the check ran shorter responses, in length (an underestimate: attention grows).
    TRL's step is projected only from a vLLM colocate phase: generation, sleep/wake and
    weight sync as measured per step, generation and update scaled with responses."""
    length = PAPER_NEW_TOKENS / new_tokens
    out: dict = {"assumptions": [
        "linear in responses (more sequences at once decode faster per token: an upper bound "
        "for generation) and in response length (attention grows: a lower bound for long "
        "responses)",
        "the random model almost never stops, so every response is full length"]}
    if "rollout_s" in native:
        rollout = native["rollout_s"] * PAPER_RESPONSES / native["rollout_seqs"] * length
        update = native["update_s"] * PAPER_RESPONSES / native["update_seqs"] * length
        out["native_s_per_step"] = round(rollout + update, 1)
        out["native_rollout_share"] = round(rollout / (rollout + update), 2)
    if trl.get("vllm") and "generate_s" in trl:
        scale = PAPER_RESPONSES / trl["responses"] * length
        out["trl_vllm_s_per_step"] = round(
            (trl["generate_s"] + trl["update_s"]) * scale + trl["weight_sync_s"]
            + trl["sleep_wake_s"], 1)
    elif "step_s" in trl:
        out["trl_hf_generate_note"] = ("TRL ran with HF generate: its step time is reported "
                                       "as measured, not projected to a paper step")
    return out


def run_phase(name: str, args, limit_s: float) -> dict:
    """One phase in a child process under `limit_s` seconds; its JSON result or the failure."""
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", name, *args.forward]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {limit_s:.0f} s (lower --max-new-tokens or the seqs)"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}", "stderr_tail": done.stderr[-3000:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result


def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu_check")
    parser.add_argument("--max-new-tokens", type=int, default=PAPER_NEW_TOKENS)
    parser.add_argument("--rollout-seqs", type=int, default=256, help="paper preset: 256")
    parser.add_argument("--update-seqs", type=int, default=64)
    parser.add_argument("--trl-seqs", type=int, default=64)
    parser.add_argument("--native-limit-s", type=float, default=300)
    parser.add_argument("--trl-limit-s", type=float, default=210)
    parser.add_argument("--budget-s", type=float, default=570,
                        help="the whole check: phases get at most what is left of it")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny model on CPU: checks the script itself, numbers mean nothing")
    parser.add_argument("--phase", choices=("native", "trl"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.forward = [a for a in (argv if argv is not None else sys.argv[1:])]
    if args.trl_seqs % 8 or args.rollout_seqs % 8:
        parser.error("--rollout-seqs and --trl-seqs count groups of 8: multiples of 8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sys.path.insert(0, str(ROOT))  # the project from source, as on a bare machine
    if args.phase:
        result = (phase_native if args.phase == "native" else phase_trl)(args)
        print(json.dumps(result))
        return 0
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU visible"}))
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_model(out / "model", SMOKE if args.cpu_smoke else QWEN25_MATH_15B,
               "cpu" if args.cpu_smoke else "cuda")
    setup_s = time.perf_counter() - t0
    left = args.budget_s - (time.perf_counter() - t0)
    native = run_phase("native", args, max(30.0, min(args.native_limit_s,
                                                     left - min(args.trl_limit_s, 60.0))))
    left = args.budget_s - (time.perf_counter() - t0)
    trl = run_phase("trl", args, max(30.0, min(args.trl_limit_s, left)))
    result = {
        "gpu": torch.cuda.get_device_name(0) if not args.cpu_smoke else "cpu (smoke test)",
        "versions": {name: _version(name) for name in ("torch", "transformers", "trl",
                                                        "accelerate", "datasets", "vllm")},
        "model": "random Qwen2.5-Math-1.5B-shaped" if not args.cpu_smoke else "tiny smoke",
        "max_new_tokens": args.max_new_tokens, "setup_s": round(setup_s, 1),
        "native": native, "trl": trl, **extrapolate(native, trl, args.max_new_tokens),
        "total_s": round(time.perf_counter() - t0, 1),
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
