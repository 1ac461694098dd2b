"""`rlvr train --plan`: memory, disk and time of a run, from the model's config.json alone.

Nothing is loaded: the parameter count and every tensor size come from the architecture keys
(hidden size, layers, heads, MLP width, vocabulary). Each figure is a sum of named terms, and
every constant the sums use is an `Assumption` printed beside the result, so a reader can see
what a number rests on and where a measurement (tests/test_plan.py on CPU, gpu_check on a GPU)
disagrees. Sizes are GiB (2^30 bytes), as torch and nvidia-smi report them.

Phases (the peak is the largest):
- native `rollout`: the training state (weights, gradients, AdamW moments, reference model),
  the fused projection copies rlvr's fast forward builds, the K/V cache of `rollout.batch_size`
  sequences of prompt + response tokens, and the sampler's per-step logits;
- native `update`: the training state, bf16 weight copies under autocast, the layer inputs
  kept by gradient checkpointing (or every layer's activations without it), one layer's
  recompute, and the response logits projected 4,096 tokens at a time;
- TRL `generate`: the training state beside vLLM's share of the GPU
  (`trl.vllm_gpu_memory_utilization`; its bf16 weights, the rest K/V cache);
- TRL `update`: the training state with vLLM asleep, checkpointed activations and the whole
  micro-batch's bf16 logits (TRL does not chunk them) and their gradient.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.errors import UserError
from rlvr.rl.plan_terms import count, disk_terms, memory_terms, time_terms

__all__ = ["GPUS", "Gpu", "ModelShape", "Plan", "check_before_run", "detect_gpu", "make_plan",
           "model_folder", "read_shape", "render"]

GIB = 2**30


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float  # what torch.cuda reports as total
    bf16_tflops: float  # dense peak
    hbm_tb_s: float


GPUS: dict[str, Gpu] = {
    "h100": Gpu("NVIDIA H100 80GB HBM3", 79.1, 989.0, 3.35),
    "h200": Gpu("NVIDIA H200", 139.8, 989.0, 4.8),
    "a100": Gpu("NVIDIA A100-SXM4-80GB", 79.2, 312.0, 2.0),
}



@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    context: int

    @property
    def params(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        q = self.heads * self.head_dim
        attention = h * q + 2 * h * kv + q * h + q + 2 * kv  # with Qwen2's q/k/v biases
        mlp = 3 * h * self.intermediate
        embed = self.vocab * h * (1 if self.tied else 2)
        return self.layers * (attention + mlp + 2 * h) + embed + h

    @property
    def fused_params(self) -> int:
        """q/k/v and gate/up weights, which rlvr's fast forward concatenates once a forward."""
        kv = self.kv_heads * self.head_dim
        return self.layers * (self.hidden * (self.heads * self.head_dim + 2 * kv)
                              + 2 * self.hidden * self.intermediate)

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return self.layers * 2 * self.kv_heads * self.head_dim * dtype_bytes


def read_shape(path: str | Path) -> ModelShape:
    """The architecture of a model folder (or a config.json file) without its weights."""
    path = Path(path)
    file = path if path.name == "config.json" else path / "config.json"
    if not file.is_file():
        raise UserError(f"--plan reads the model's config.json: {file} does not exist",
                        "pass a local model folder (the weights are not needed)")
    cfg = json.loads(file.read_text())
    cfg = cfg.get("text_config", cfg)
    try:
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        return ModelShape(
            hidden=hidden, layers=int(cfg["num_hidden_layers"]), heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate=int(cfg["intermediate_size"]), vocab=int(cfg["vocab_size"]),
            tied=bool(cfg.get("tie_word_embeddings", False)),
            context=int(cfg.get("max_position_embeddings") or 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{file} lacks the architecture key {exc}",
                        "--plan needs a decoder config (hidden_size, num_hidden_layers, ...)") from exc


@dataclass
class Plan:
    engine: str
    device: str
    gpu: Gpu | None
    params: int
    memory: dict[str, dict[str, float]]  # phase -> term -> GiB
    disk: dict[str, float]  # term -> GiB
    tokens_per_step: int
    rollout_batch: int | None  # native: sequences decoded at once
    rollout_batch_fit: int | None  # native: the most that fit beside the state
    kv_tokens: int | None  # TRL/vLLM: tokens vLLM's share holds
    step_seconds: dict[str, float] | None
    run_hours: float | None
    capacity_gib: float
    free_disk_gib: float | None
    assumptions: list[str]

    @property
    def peak_gib(self) -> float:
        return max(sum(terms.values()) for terms in self.memory.values())

    @property
    def disk_gib(self) -> float:
        return sum(self.disk.values())

    @property
    def fits_memory(self) -> bool:
        return self.peak_gib <= self.capacity_gib

    @property
    def fits_disk(self) -> bool:
        return self.free_disk_gib is None or self.disk_gib <= self.free_disk_gib

    def problem(self) -> str | None:
        """The one line that says why the run will not fit, or None."""
        where = self.gpu.name if self.gpu else "this machine"
        if not self.fits_memory:
            phase = max(self.memory, key=lambda p: sum(self.memory[p].values()))
            return (f"the run needs {self.peak_gib:.1f} GiB in its {phase} phase, more than "
                    f"the {self.capacity_gib:.1f} GiB of {where} (rlvr train ... --plan shows "
                    "each term)")
        if not self.fits_disk:
            return (f"the run's checkpoints need {self.disk_gib:.0f} GiB, more than the "
                    f"{self.free_disk_gib:.0f} GiB free under --out (lower log.keep_last or "
                    "log.snapshot_steps, or choose another --out)")
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "device": self.device,
            "gpu": self.gpu.name if self.gpu else None, "params": self.params,
            "memory_gb": {p: round(sum(t.values()), 2) for p, t in self.memory.items()},
            "memory_terms_gb": {p: {k: round(v, 3) for k, v in t.items()}
                                for p, t in self.memory.items()},
            "peak_memory_gb": round(self.peak_gib, 2),
            "gpu_memory_gb": self.capacity_gib if self.gpu else None,
            "capacity_gb": round(self.capacity_gib, 2),
            "disk_gb": round(self.disk_gib, 2),
            "disk_terms_gb": {k: round(v, 2) for k, v in self.disk.items()},
            "free_disk_gb": None if self.free_disk_gib is None else round(self.free_disk_gib, 1),
            "tokens_per_step": self.tokens_per_step, "rollout_batch": self.rollout_batch,
            "rollout_batch_fit": self.rollout_batch_fit, "vllm_kv_tokens": self.kv_tokens,
            "step_seconds": None if self.step_seconds is None else round(
                sum(self.step_seconds.values()), 1),
            "step_seconds_terms": self.step_seconds, "run_hours": self.run_hours,
            "fits": self.fits_memory and self.fits_disk, "fits_memory": self.fits_memory,
            "fits_disk": self.fits_disk, "assumptions": self.assumptions,
        }


def make_plan(cfg, shape: ModelShape, *, engine: str, gpu: Gpu | None, out: Path | None,
              vllm_share: float = 0.35, host_gib: float | None = None) -> Plan:
    """The plan of `cfg` (a TrainConfig) on `gpu` (None: the CPU) with the given engine."""

    device = "cuda" if gpu is not None and cfg.model.device != "cpu" else "cpu"
    notes: list[str] = []
    memory, fit, kv_tokens = memory_terms(cfg, shape, engine=engine, device=device, gpu=gpu,
                                          vllm_share=vllm_share, notes=notes)
    disk = disk_terms(cfg, shape, notes=notes)
    responses = cfg.responses_per_step or cfg.rollout.n
    tokens = responses * (cfg.rollout.max_prompt_tokens + cfg.rollout.max_new_tokens)
    step = run_hours = None
    if gpu is not None and device == "cuda":
        step, run_hours = time_terms(cfg, shape, engine=engine, gpu=gpu, kv_tokens=kv_tokens,
                                     notes=notes)
    else:
        notes.append("time: not estimated on a CPU; name a GPU with --gpu h100|h200|a100")
    capacity = gpu.memory_gib if device == "cuda" else (host_gib or _host_gib())
    return Plan(engine=engine, device=device, gpu=gpu, params=shape.params, memory=memory,
                disk=disk, tokens_per_step=tokens,
                rollout_batch=min(cfg.rollout.batch_size, responses) if engine == "native"
                else None, rollout_batch_fit=fit, kv_tokens=kv_tokens, step_seconds=step,
                run_hours=run_hours, capacity_gib=capacity, free_disk_gib=_free_gib(out),
                assumptions=notes)


def _host_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return math.inf


def _free_gib(out: Path | None) -> float | None:
    import shutil

    if out is None:
        return None
    probe = Path(out).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / GIB


def model_folder(path: str) -> Path:
    """model.path as a folder ("" = the shipped organism)."""
    from rlvr.model.locate import model_path

    return Path(model_path(path))


def render(plan: Plan) -> str:
    """The plan as the lines `rlvr train --plan` prints."""
    where = plan.gpu.name if plan.gpu else "CPU"
    lines = [f"plan: engine {plan.engine} on {where} ({plan.device}), "
             f"{count(plan.params)} parameters",
             f"tokens per step: {plan.tokens_per_step:,} (prompt + response limits)"]
    for phase, terms in plan.memory.items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in terms.items())
        lines.append(f"memory, {phase}: {sum(terms.values()):.1f} GiB ({parts})")
    lines.append(f"peak memory: {plan.peak_gib:.1f} GiB of {plan.capacity_gib:.1f} GiB: "
                 + ("fits" if plan.fits_memory else "DOES NOT FIT"))
    if plan.rollout_batch is not None:
        fit = "" if plan.rollout_batch_fit is None else f" (at most {plan.rollout_batch_fit} fit)"
        lines.append(f"rollout batch: {plan.rollout_batch} sequences at once{fit}")
    if plan.kv_tokens is not None:
        lines.append(f"vLLM K/V cache: {plan.kv_tokens:,} tokens")
    disk = ", ".join(f"{k} {v:.1f}" for k, v in plan.disk.items())
    free = ("" if plan.free_disk_gib is None
            else f" of {plan.free_disk_gib:.0f} GiB free under --out")
    lines.append(f"disk: {plan.disk_gib:.1f} GiB ({disk}){free}: "
                 + ("fits" if plan.fits_disk else "DOES NOT FIT"))
    if plan.step_seconds is not None:
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in plan.step_seconds.items())
        lines.append(f"time: {sum(plan.step_seconds.values()):.0f} s a step ({parts}), "
                     f"{plan.run_hours:.1f} h for the run (an upper bound)")
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in plan.assumptions]
    return "\n".join(lines)


def detect_gpu(name: str | None) -> Gpu | None:
    """The GPU named by --gpu, else the visible one when it is one of GPUS, else None."""
    if name:
        if name.lower() not in GPUS:
            raise UserError(f"unknown --gpu {name!r}", f"choose one of: {', '.join(GPUS)}")
        return GPUS[name.lower()]
    import torch

    if not torch.cuda.is_available():
        return None
    seen = torch.cuda.get_device_name(0).lower()
    total = torch.cuda.get_device_properties(0).total_memory / GIB
    for key, gpu in GPUS.items():
        if key in seen:
            return Gpu(gpu.name, round(total, 1), gpu.bf16_tflops, gpu.hbm_tb_s)
    return Gpu(torch.cuda.get_device_name(0), round(total, 1), 400.0, 2.0)


def check_before_run(cfg, *, engine: str, out: Path) -> None:
    """Refuse (a one-line UserError) a run whose memory on this GPU or whose disk under `out`
    will not hold it, before anything is written. Memory is checked on a GPU only."""
    gpu = detect_gpu(None) if cfg.model.device != "cpu" else None
    try:
        shape = read_shape(model_folder(cfg.model.path))
    except UserError:
        return  # a Hub id not yet downloaded: the loader reports it
    plan = make_plan(cfg, shape, engine=engine, gpu=gpu, out=out,
                     vllm_share=cfg.rollout.vllm_memory)
    if gpu is None:
        plan.capacity_gib = math.inf  # the CPU's memory is the OS's to share; disk only
    problem = plan.problem()
    if problem:
        raise UserError(problem, "rlvr train ... --plan shows every term")
