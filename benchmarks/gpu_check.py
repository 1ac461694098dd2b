"""GPU check: a few `rlvr train` steps of a random Qwen2.5-1.5B-shaped model; tokens/s, s/step.

    python benchmarks/gpu_check.py [--steps 3] [--copies 16] [--max-new-tokens 1024] \
        [--out $OUT/gpu_check]

Prepared for a machine with one CUDA GPU (no download: the model is random-initialised with
Qwen2.5-Math-1.5B's shape — 28 layers, hidden 1536, 12 heads / 2 KV heads, MLP 8960, vocab
151,936, tied embeddings — and a synthetic tokenizer of the same vocabulary size). It runs the
real command, `rlvr train --preset paper`, with the paper's group size 8 and a reduced batch
(`--copies` copies of one problem) and response budget, then reads the run's metrics.jsonl.
A random model almost never emits EOS, so every response uses the whole budget: the figures
are the worst case for a given length. Prints one JSON object and writes it to
`<out>/gpu_check.json`; `docs/benchmarks.md` says how to record it. Exit code 1 without a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

QWEN25_MATH_15B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                       num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                       max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True)


def make_model(folder: Path, shape: dict) -> Path:
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    for i in range(len(vocab), shape["vocab_size"]):
        vocab[f"<t{i}>"] = i  # filler ids so the embedding has the real model's size
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>",
                                        eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = Qwen2Config(**shape, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --cpu-smoke: the same script on a model small enough to check it without a GPU.
SMOKE = dict(QWEN25_MATH_15B, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, vocab_size=512)


def rollout_throughput(model_dir: Path, prompts: int, max_new_tokens: int, device: str) -> dict:
    """Generated tokens per second of rlvr's rollout alone (no training), bf16 on the GPU."""
    import torch

    from rlvr.rollout import SamplingParams, generate, load_model

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model, tokenizer = load_model(model_dir, device=device, dtype=dtype)
    params = SamplingParams(temperature=0.6, top_p=1.0, n=8, max_new_tokens=max_new_tokens)
    text = ["What is 17 + 25? Put the answer in \\boxed{}."] * prompts
    generate(model, tokenizer, text[:1], SamplingParams(max_new_tokens=4))  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    completions = generate(model, tokenizer, text, params, batch_size=prompts)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for c in completions)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"rollout_tokens": tokens, "rollout_s": round(seconds, 2),
            "rollout_tokens_per_s": round(tokens / seconds, 1),
            "rollout_peak_gib": round(peak, 1) if peak else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--copies", type=int, default=16, help="groups per step (paper: 128)")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="paper: 3072")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--rollout-batch", type=int, default=16, help="prompts per generate()")
    parser.add_argument("--out", default="gpu_check")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny model on CPU: checks the script itself, numbers mean nothing")
    args = parser.parse_args()
    import torch

    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU visible"}))
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = make_model(out / "model", SMOKE if args.cpu_smoke else QWEN25_MATH_15B)
    train = out / "train.jsonl"
    train.write_text(json.dumps({"id": "0", "problem": "What is 17 + 25? Put the answer in "
                                 "\\boxed{}.", "answer": "42"}) + "\n")
    run = out / "run"
    command = [
        sys.executable, "-m", "rlvr", "train", "--model", str(model), "--train", str(train),
        "--preset", "paper", "--reward", "outcome", "--steps", str(args.steps),
        "--out", str(run), "--no-progress", "--save-every", "0",
        "--set", "eval.suites=[]", "--set", "data.template=\"raw\"",
        "--set", f"data.copies={args.copies}",
        "--set", f"rollout.max_new_tokens={args.max_new_tokens}",
        "--set", f"rollout.batch_size={args.rollout_batch}",
        "--set", f"optim.micro_batch_size={args.micro_batch}",
        "--set", "model.gradient_checkpointing=true", "--set", f"model.device=\"{device}\"",
    ]
    setup_s = time.perf_counter() - t0
    rollout = rollout_throughput(model, args.rollout_batch, args.max_new_tokens, device)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        return done.returncode
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = metrics[1:] or metrics  # the first step includes CUDA warm-up
    result = {
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke test)",
        "torch": torch.__version__, **rollout,
        "model": "random Qwen2.5-1.5B-shaped", "steps": len(metrics),
        "responses_per_step": args.copies * 8, "max_new_tokens": args.max_new_tokens,
        "micro_batch": args.micro_batch, "rollout_batch_prompts": args.rollout_batch,
        "s_per_step": round(statistics.median(m["step_time_s"] for m in timed), 2),
        "step_tokens_per_s": round(statistics.median(m["tokens_per_s"] for m in timed), 1),
        "resp_len_mean": round(statistics.median(m["resp_len_mean"] for m in timed), 1),
        "setup_s": round(setup_s, 1), "command": " ".join(command[1:]),
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
