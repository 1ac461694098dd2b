"""Rollout: a causal LM and prompt strings → sampled completions with their finish reason.

The `hf` backend is our own KV-cache sampling loop over any Hugging Face causal LM: one prefill
of the left-padded batch, then one forward per new token, the batch stopping once every row has
emitted EOS. On tiny CPU models it is faster than `model.generate`, whose per-token Python
overhead dominates there (benchmarks/bench_rollout.py; docs/benchmarks.md). Llama/Qwen2 models
decode through `rlvr.model.kv_cache` (fused projections, a preallocated K/V cache; same logits),
others through their own forward and cache; the loop itself is `rlvr.model.decode.decode`.
Greedy decoding equals `model.generate(do_sample=False)` token for token (tests/test_rollout.py).

Sampling noise is keyed by (seed, prompt index, sample index) (`rlvr.model.decode.row_keys`):
completion (i, s) is the same whatever the batch size or the length-sorted batching order.
Log-probs are not returned: the trainer recomputes them under its own temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rlvr.core.progress import bar, quiet_third_party
from rlvr.errors import UserError
from rlvr.model.decode import decode, left_pad, row_keys
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
    "stop_token_ids",
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


def stop_token_ids(model, tokenizer, stop: str = "end_of_turn") -> frozenset[int]:
    """The ids that end a training response under `rollout.stop`: "end_of_turn" is
    `eos_token_ids`; "eos" is the tokenizer's and the generation config's EOS only (the
    paper's rollouts, which a base model's chat turn does not end)."""
    if stop == "end_of_turn":
        return eos_token_ids(model, tokenizer)
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([int(extra)] if isinstance(extra, int) else [int(i) for i in extra or ()])
    if not ids:
        raise UserError("the model has no EOS token, so no response could ever stop",
                        "set eos_token in the tokenizer files, or rollout.stop=end_of_turn")
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
             key_offset: int = 0, stop_ids: frozenset[int] | None = None) -> list[Completion]:
    """Sample `params.n` completions per prompt, in prompt-major order (len(prompts) * n).

    `stop_ids` end a response (default `eos_token_ids`; `stop_token_ids` gives EOS only).

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
    eos = stop_ids or eos_token_ids(model, tokenizer)
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
        ids, mask, positions = left_pad(prompt_ids, pad_id)
        decoder = make_decoder(model, len(prompt_ids), ids.shape[1] + params.max_new_tokens)
        return decode(decoder, ids.to(device), mask.to(device), positions.to(device),
                      row_keys(params.seed, keys, device), params, eos, pad_id)
    finally:
        model.train(was_training)
