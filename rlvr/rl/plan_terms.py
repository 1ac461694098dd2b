"""The terms `rlvr.rl.plan` adds up: memory per phase, disk, seconds per step.

Every constant used here is appended to `notes` in words, so the plan prints what it assumed.
"""

from __future__ import annotations

import math

GIB = 2**30
_LOGIT_CHUNK = 4096  # rlvr.rl.trainer's response tokens per vocabulary projection
# The stated constants of the time model (printed with every plan).
MFU = 0.40  # sustained share of peak bf16 FLOP/s in the update
HBM_EFFICIENCY = 0.60  # share of peak memory bandwidth a decode step reaches
LAUNCH_S_PER_LAYER = 50 * 8e-6  # native decode: ~50 kernels a layer, ~8 µs a launch
VLLM_OVERHEAD_GIB = 2.0  # vLLM's activations and CUDA graphs inside its share
VALIDATION_ITEMS = 500  # MATH500, one sample each


def _bytes(dtype: str) -> int:
    return 2 if dtype in ("bfloat16", "float16") else 4  # auto: fp32 weights (bf16 autocast)


def count(params: int) -> str:
    return f"{params / 1e9:.3f} B" if params >= 1e8 else f"{params / 1e6:.2f} M"


def _kl(cfg) -> bool:
    return cfg.algo.kl_coef > 0 and cfg.algo.kl_type != "none"


def state_terms(cfg, shape, notes: list[str]) -> dict[str, float]:
    """Weights, gradients, optimizer moments and the reference model, in GiB."""
    p, wb = shape.params, _bytes(cfg.model.dtype)
    o = cfg.optim
    moments = 2 if o.name == "adamw" else (1 if o.momentum else 0)
    notes.append(f"state: {count(p)} parameters × {wb} B (weights), × {wb} B "
                 f"(gradients), × {moments} × {wb} B ({o.name} moments)"
                 + (f", + a frozen reference × {wb} B (KL {cfg.algo.kl_coef})" if _kl(cfg)
                    else ", no reference model (KL off)"))
    out = {"weights": p * wb / GIB, "gradients": p * wb / GIB,
           "optimizer": moments * p * wb / GIB}
    if _kl(cfg):
        out["reference"] = p * wb / GIB
    return out


def memory_terms(cfg, shape, *, engine: str, device: str, gpu, vllm_share: float,
                 notes: list[str]):
    """({phase: {term: GiB}}, native rollout batch that fits or None, vLLM K/V tokens or None)."""
    state = state_terms(cfg, shape, notes)
    r = cfg.rollout
    length = r.max_prompt_tokens + r.max_new_tokens
    notes.append(f"sequences: prompt ≤ {r.max_prompt_tokens} + response ≤ {r.max_new_tokens} "
                 "tokens, every one at full length (the worst case)")
    autocast = device == "cuda" and cfg.model.dtype == "auto"
    act = 2 if autocast else _bytes(cfg.model.dtype)
    update = dict(state, **_update_terms(cfg, shape, length, act, autocast, engine, notes))
    if engine == "trl":
        return _trl_phases(cfg, shape, state, update, gpu, vllm_share, length, notes)
    kv_b = 2 if autocast else _bytes(cfg.model.dtype)
    per_seq = (shape.kv_bytes_per_token(kv_b) * length + 3 * shape.vocab * 4) / GIB
    fused = shape.fused_params * _bytes(cfg.model.dtype) / GIB
    batch = min(r.batch_size, cfg.responses_per_step or r.n)
    rollout = dict(state, fused_projections=fused, kv_cache=batch * per_seq)
    notes.append(f"native rollout: {batch} sequences at once, K/V {kv_b} B × "
                 f"{shape.kv_bytes_per_token(1)} values a token, + fp32 logits ×3 a sequence, "
                 "+ the fused q/k/v and gate/up weight copies of rlvr's fast forward")
    fit = None
    if gpu is not None and device == "cuda":
        spare = gpu.memory_gib * 0.95 - sum(state.values()) - fused
        fit = max(0, int(spare // per_seq))
        notes.append("rollout batch that fits: (95% of the GPU − state − fused copies) / one "
                     "sequence's cache")
    return {"rollout": rollout, "update": update}, fit, None


def _update_terms(cfg, shape, length: int, act: int, autocast: bool, engine: str,
                  notes: list[str]) -> dict[str, float]:
    m, h = cfg.optim.micro_batch_size, shape.hidden
    tokens = m * length
    out: dict[str, float] = {}
    if autocast:
        out["bf16_weight_copies"] = shape.params * 2 / GIB
    # what a decoder layer keeps for its backward, a token: the two norms' inputs, q, k, v, the
    # attention output (4 hidden + 2 K/V widths) and the MLP's gate, up and product (3 MLP)
    layer = tokens * (4 * h + 2 * shape.kv_heads * shape.head_dim + 3 * shape.intermediate)
    if cfg.model.gradient_checkpointing:
        out["checkpointed_inputs"] = shape.layers * tokens * h * 4 / GIB
        out["one_layer_recompute"] = layer * act / GIB
        how = (f"checkpointing: each of {shape.layers} layers keeps its fp32 input "
               f"({m} × {length} × {h}), one layer's activations are rebuilt at a time")
    else:
        out["activations"] = shape.layers * layer * act / GIB
        how = (f"no checkpointing: every layer keeps (4·hidden + 2·K/V + 3·MLP) values a token "
               f"× {act} B")
    resp = m * cfg.rollout.max_new_tokens
    if engine == "trl":
        out["logits"] = (resp * shape.vocab * (act + act) + 2 * cfg.rollout.max_new_tokens
                         * shape.vocab * 4) / GIB
        how += (f"; TRL: the micro-batch's {resp} response tokens' logits and their gradient "
                f"at once ({act} B), + one row's fp32 log-softmax and its gradient")
    else:
        out["logits_chunk"] = 3 * min(_LOGIT_CHUNK, resp) * shape.vocab * 4 / GIB
        how += (f"; response logits {min(_LOGIT_CHUNK, resp)} tokens at a time, fp32, ×3 "
                "(logits, log-softmax, gradient)")
    if engine == "native":  # rlvr's fast forward concatenates them once a forward
        out["fused_projections"] = shape.fused_params * _bytes(cfg.model.dtype) / GIB
    notes.append(f"update: micro-batch {m} responses; " + how)
    return {k: v for k, v in out.items() if v}


def _trl_phases(cfg, shape, state, update, gpu, share, length, notes):
    if gpu is None:
        notes.append("TRL on a CPU: model.generate of the whole step (no vLLM share)")
        gen = dict(state, kv_cache=(cfg.responses_per_step or cfg.rollout.n)
                   * shape.kv_bytes_per_token(4) * length / GIB)
        return {"generate": gen, "update": update}, None, None
    vllm = gpu.memory_gib * share
    weights = shape.params * 2 / GIB
    kv = max(0.0, vllm - weights - VLLM_OVERHEAD_GIB)
    tokens = int(kv * GIB // shape.kv_bytes_per_token(2))
    notes.append(f"TRL + vLLM colocate: vLLM takes rollout.vllm_memory = {share} of "
                 f"{gpu.memory_gib} GiB while generating (bf16 weights {weights:.1f} GiB, "
                 f"~2 GiB of its own activations, the rest K/V: {tokens:,} tokens = "
                 f"{tokens // length} full-length sequences at once) and sleeps during the "
                 "update (sleep level 2: its weights and cache are dropped; the trainer "
                 "pushes the weights again before each generation)")
    gen = dict(state, vllm_weights=weights, vllm_kv_cache=kv,
               vllm_overhead=min(VLLM_OVERHEAD_GIB, vllm))
    return {"generate": gen, "update": update}, None, tokens


def disk_terms(cfg, shape, notes: list[str]) -> dict[str, float]:
    """GiB the run's checkpoints and snapshots need at their largest."""
    lg, p = cfg.log, shape.params
    wb = _bytes(cfg.model.dtype)
    moments = 2 if cfg.optim.name == "adamw" else (1 if cfg.optim.momentum else 0)
    one = (p * wb * (1 + moments) + 12 * 2**20) / GIB
    saves = (cfg.steps // lg.save_every if lg.save_every else 0) + 1
    kept = saves if not lg.keep_last else min(saves, lg.keep_last + 1)
    snaps = [s for s in lg.snapshot_steps if 0 <= s <= cfg.steps]
    notes.append(f"disk: a resumable checkpoint is {wb} B weights + {moments} × {wb} B moments "
                 f"a parameter ({one:.2f} GiB); {saves} saves, "
                 + (f"the newest {lg.keep_last} kept (+1 while the next is written)"
                    if lg.keep_last else "all kept")
                 + f"; {len(snaps)} bf16 weight-only snapshots at steps {list(snaps)}")
    return {"checkpoints": kept * one, "snapshots": len(snaps) * p * 2 / GIB,
            "logs": 0.1}


def time_terms(cfg, shape, *, engine: str, gpu, kv_tokens: int | None, notes: list[str]):
    """({term: seconds} for one step, hours for the run)."""
    r, p = cfg.rollout, shape.params
    responses = cfg.responses_per_step or r.n
    length = r.max_prompt_tokens + r.max_new_tokens
    ctx = r.max_prompt_tokens + r.max_new_tokens / 2  # mean context while decoding
    flops = 6 + (2 if cfg.model.gradient_checkpointing else 0) + (2 if _kl(cfg) else 0)
    if not (cfg.algo.ppo_epochs == 1 and cfg.algo.mini_batches == 1):
        flops += 2
    attention = 12 * shape.layers * shape.heads * shape.head_dim * ctx / p
    tokens = responses * length
    update = tokens * (flops + attention) * p * cfg.algo.ppo_epochs / (
        gpu.bf16_tflops * 1e12 * MFU)
    notes.append(f"update: ({flops} + {attention:.2f} attention) × parameters FLOP a token "
                 f"(6 forward+backward, +2 checkpoint recompute, +2 reference, +2 old "
                 f"log-probs when off-policy) at {MFU:.0%} of {gpu.bf16_tflops:.0f} TFLOP/s")
    bw = gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
    kv_tok = shape.kv_bytes_per_token(2)
    if engine == "trl":
        concurrent = max(1, min(responses, (kv_tokens or 0) // max(1, int(ctx))))
        per_token = (p * 2 / concurrent + ctx * kv_tok) / bw
        notes.append(f"vLLM decode: memory-bound, {concurrent} sequences at once, each token "
                     f"reads its share of the bf16 weights and its {int(ctx)}-token cache at "
                     f"{HBM_EFFICIENCY:.0%} of {gpu.hbm_tb_s} TB/s; sleep/wake and weight sync "
                     "not counted")
        rollout = responses * r.max_new_tokens * per_token
    else:
        batch = max(1, min(r.batch_size, responses))
        step = max(shape.layers * LAUNCH_S_PER_LAYER,
                   (p * 8 + batch * ctx * kv_tok) / bw)
        rollout = math.ceil(responses / batch) * r.max_new_tokens * step
        notes.append(f"native decode: one Python step a token for {batch} sequences, the "
                     f"larger of the kernel launches ({shape.layers} layers × "
                     f"{LAUNCH_S_PER_LAYER * 1e6:.0f} µs) and the memory traffic (fp32 weights "
                     "read and cast, 8 B a parameter, + the caches)")
    out = {"rollout": round(rollout, 1), "update": round(update, 1)}
    validate = 0.0
    if cfg.eval.suites and cfg.log.eval_every:
        per = VALIDATION_ITEMS * (cfg.eval.max_new_tokens or r.max_new_tokens) * (
            rollout / max(1, responses * r.max_new_tokens))
        validate = per / cfg.log.eval_every
        out["validation_per_step"] = round(validate, 1)
        notes.append(f"validation: {VALIDATION_ITEMS} items × full length every "
                     f"{cfg.log.eval_every} steps at the rollout's rate")
    hours = sum(out.values()) * cfg.steps / 3600
    return out, round(hours, 1)
