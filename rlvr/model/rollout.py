"""Rollout: a causal LM and prompt strings → sampled completions with their finish reason.

The `hf` backend is our own KV-cache sampling loop over any Hugging Face causal LM: one prefill
of the left-padded batch, then one forward per new token, the batch stopping once every row has
emitted EOS. On tiny CPU models it is faster than `model.generate`, whose per-token Python
overhead dominates there (benchmarks/bench_rollout.py; docs/benchmarks.md). Llama/Qwen2 models
decode through `rlvr.model.fast_forward` (fused projections, a preallocated K/V cache; same logits),
others through their own forward and cache. Greedy decoding equals
`model.generate(do_sample=False)` token for token (tests/test_rollout.py).

Sampling noise is counter-based, a hash of (seed, prompt index, sample index, step, token),
not a stream from one generator: completion (i, s) is the same whatever the batch size, the
length-sorted batching order, or the device. So the trainer's rollouts and the harness's
samples are reproducible from the seed alone. Log-probs are not returned: the trainer
recomputes them under its own temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rlvr.core.progress import bar, quiet_third_party
from rlvr.errors import UserError
from rlvr.model.policy import make_decoder
from rlvr.model.preflight import check_device, check_weights
from rlvr.model.sampling import Completion, SamplingParams, end_of_turn_id

__all__ = [
    "BACKENDS",
    "Completion",
    "SamplingParams",
    "encode_prompts",
    "end_of_turn_id",
    "eos_token_ids",
    "generate",
    "load_model",
    "resolve_backend",
]

BACKENDS = ("hf", "vllm", "auto")


def load_model(path: str | Path, *, device: str | None = None, dtype: Any = None):
    """Load a causal LM (a local folder or a Hub id, `rlvr.model.locate.resolve_model`) and its
    tokenizer, ready for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr.model.locate import resolve_model

    folder = resolve_model(path)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has no config.json, so it is not a Hugging Face model folder",
                        "point --model at a checkpoint folder such as runs/NAME/checkpoints/step-N")
    device = check_device(device)
    check_weights(folder)
    quiet_third_party()
    if dtype is None:
        dtype = torch.float32 if device == "cpu" else "auto"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
    model.eval()
    prepare_tokenizer(tokenizer)
    return model, tokenizer


def prepare_tokenizer(tokenizer) -> None:
    """Left padding (new tokens go on the right of every row) and a pad token to pad with."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise UserError("the tokenizer has neither a pad nor an EOS token",
                            "add one to the tokenizer files of the model folder")
        tokenizer.pad_token = tokenizer.eos_token


def eos_token_ids(model, tokenizer) -> frozenset[int]:
    """Every id that ends a response: the tokenizer's EOS, the generation config's (Qwen's
    chat models list both <|im_end|> and <|endoftext|> there) and the chat template's
    end-of-turn marker (a base model such as Qwen2.5-Math-1.5B lists only <|endoftext|>, yet
    under its chat template it closes its answer with <|im_end|> and would run on past it)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    turn_end = end_of_turn_id(tokenizer)
    if turn_end is not None:
        ids.add(turn_end)
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None) if config is not None else None
    if isinstance(extra, int):
        ids.add(extra)
    elif extra is not None:
        ids.update(int(i) for i in extra)
    if not ids:
        raise UserError("the model has no EOS token, so no response could ever stop",
                        "set eos_token in the tokenizer files")
    return frozenset(ids)


def encode_prompts(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    """Prompt token ids as rollout feeds them (the trainer must score the same ids).

    Special tokens are added as the tokenizer would, except when a chat template already put
    the BOS token in the text, so it is never doubled.
    """
    bos = tokenizer.bos_token
    encoded = []
    for text in prompts:
        add = not (bos and text.startswith(bos))
        encoded.append(list(tokenizer(text, add_special_tokens=add)["input_ids"]))
    return encoded


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}", f"choose one of {', '.join(BACKENDS)}")
    if backend == "hf":
        return "hf"
    from rlvr.model import vllm_backend

    if vllm_backend.available():
        return "vllm"
    if backend == "vllm":
        raise UserError("backend 'vllm' needs the vllm package and a CUDA GPU",
                        "install the vllm extra on a GPU machine, or use --backend hf")
    return "hf"


def generate(model, tokenizer, prompts: Sequence[str], params: SamplingParams, *,
             batch_size: int = 64, progress: bool = False, backend: str = "hf",
             key_offset: int = 0) -> list[Completion]:
    """Sample `params.n` completions per prompt, in prompt-major order (len(prompts) * n).

    The noise of prompt i is keyed by `key_offset + i`, so a long list sampled in chunks (each
    with its start as offset) gives the same completions as one call.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    if not prompts:
        return []
    if resolve_backend(backend) == "vllm":
        from rlvr.model import vllm_backend

        return vllm_backend.generate(model, tokenizer, prompts, params, key_offset=key_offset)
    prepare_tokenizer(tokenizer)
    encoded = encode_prompts(tokenizer, prompts)
    # Greedy samples are identical: decode each prompt once and copy it n times.
    copies = 1 if params.temperature == 0 else params.n
    jobs = [(i, s) for i in range(len(prompts)) for s in range(copies)]
    # Similar lengths share a batch (less padding); noise keyed per row makes order irrelevant.
    jobs.sort(key=lambda job: len(encoded[job[0]]))
    eos = eos_token_ids(model, tokenizer)
    found: dict[tuple[int, int], tuple[tuple[int, ...], str]] = {}
    with bar("sampling", len(jobs), enabled=progress) as advance:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start:start + batch_size]
            keys = [(key_offset + i, s) for i, s in batch]
            rows = _sample_batch(model, [encoded[i] for i, _ in batch], keys, params, eos,
                                 tokenizer.pad_token_id)
            found.update(zip(batch, rows, strict=True))
            advance(len(batch))
    out = []
    for i in range(len(prompts)):
        for s in range(params.n):
            ids, reason = found[(i, s if copies > 1 else 0)]
            body = ids[:-1] if reason == "stop" else ids
            text = tokenizer.decode(list(body), skip_special_tokens=True)
            out.append(Completion(i, s, text, ids, reason))
    return out


@torch.inference_mode()
def _sample_batch(model, prompt_ids: list[list[int]], keys: list[tuple[int, int]],
                  params: SamplingParams, eos: frozenset[int], pad_id: int):
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return _decode_loop(model, device, prompt_ids, keys, params, eos, pad_id)
    finally:
        model.train(was_training)


def _decode_loop(model, device, prompt_ids, keys, params, eos, pad_id):
    batch, width = len(prompt_ids), max(len(p) for p in prompt_ids)
    if width == 0:
        raise UserError("a prompt encodes to zero tokens", "check the prompt template")
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, p in enumerate(prompt_ids):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)  # (B, P)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, P)
    row_keys = _row_keys(params.seed, keys, device)  # (B,)
    eos_ids = torch.tensor(sorted(eos), device=device)
    tokens = torch.full((batch, params.max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((batch,), params.max_new_tokens, dtype=torch.long, device=device)
    stopped = torch.zeros(batch, dtype=torch.bool, device=device)
    active = torch.arange(batch, device=device)  # original rows still in the batch, (A,)
    alive = torch.ones(batch, dtype=torch.bool, device=device)  # (A,) not yet at EOS
    decoder = make_decoder(model, batch, width + params.max_new_tokens)
    logits = decoder.prefill(ids, mask, positions)  # (B, V)
    position = positions[:, -1]  # (A,)
    for step in range(params.max_new_tokens):
        token = _choose(logits, params, row_keys[active], step)  # (A,)
        token = torch.where(alive, token, torch.full_like(token, pad_id))
        tokens[active[alive], step] = token[alive]
        ended = torch.isin(token, eos_ids) & alive
        lengths[active[ended]] = step + 1
        stopped[active[ended]] = True
        alive &= ~ended
        if not bool(alive.any()) or step + 1 == params.max_new_tokens:
            break
        # Drop finished rows once they are a quarter of the batch, so a few long (looping)
        # responses stop carrying the dead rows' compute (model.generate keeps them all).
        if int((~alive).sum()) * 4 >= len(active) and decoder.can_select():
            index = alive.nonzero().squeeze(-1)
            decoder.select_rows(index)
            active, token, position, alive = active[index], token[index], position[index], alive[index]
        position = position + 1
        logits = decoder.step(token, position)
    rows = []
    for seq, n, stop in zip(tokens.cpu().tolist(), lengths.cpu().tolist(),
                            stopped.cpu().tolist(), strict=True):
        rows.append((tuple(seq[:n]), "stop" if stop else "length"))
    return rows


def _choose(logits: torch.Tensor, params: SamplingParams, row_keys: torch.Tensor,
            step: int) -> torch.Tensor:
    logits = logits.float()  # (B, V)
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    if params.top_p < 1:
        logits = _top_p_filter(logits, params.top_p)
    # Gumbel-max: argmax(logits + Gumbel noise) is an exact draw from softmax(logits).
    uniform = _uniform_noise(row_keys, step, logits.shape[-1])  # (B, V)
    gumbel = -torch.log(-torch.log(uniform))
    return (logits.double() + gumbel).argmax(dim=-1)


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    # Drop a token when the tokens ranked above it already reach top_p (the top one always stays).
    drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    # Logical right shift on int64 (torch's >> is arithmetic for negative values).
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser: int64 arithmetic wraps, which is what the hash wants."""
    x = x + _GOLDEN
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    return x ^ _shr(x, 31)


def _row_keys(seed: int, keys: list[tuple[int, int]], device) -> torch.Tensor:
    prompt = torch.tensor([k[0] for k in keys], dtype=torch.long, device=device)
    sample = torch.tensor([k[1] for k in keys], dtype=torch.long, device=device)
    base = _mix(torch.full_like(prompt, seed))
    return _mix(_mix(base + prompt) + sample)  # (B,)


def _uniform_noise(row_keys: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    step_keys = _mix(row_keys + step)  # (B,)
    token = torch.arange(vocab, dtype=torch.long, device=row_keys.device)
    bits = _mix(step_keys[:, None] + token[None, :] * _GOLDEN)  # (B, V)
    # 53 random bits → float64 in (0, 1), never 0 or 1, so both logs stay finite.
    return (_shr(bits, 11).double() + 0.5) * (2.0 ** -53)
