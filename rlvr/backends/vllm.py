"""vLLM backend: used only when `import vllm` works and a CUDA GPU is present (never required).

vLLM loads weights itself, so it needs the model's folder: the path the model was loaded from
(`model.name_or_path`). It therefore sees the weights *on disk*: fine for `rlvr eval` on saved
checkpoints, wrong for a policy changed in memory (the trainer uses the `hf` backend). One
engine is kept at a time; moving to another folder (the next checkpoint) frees the old one
first. Each prompt gets its own seed, (seed, prompt index), but vLLM draws its own random
numbers, so samples differ from the `hf` backend's; greedy agrees up to kernel numerics.
Written against vLLM's documented `LLM.generate` API; not exercised in CI (no GPU there).
"""

from __future__ import annotations

import gc
import importlib.util
import os
from collections.abc import Sequence

from rlvr.errors import UserError
from rlvr.sampling import Completion

__all__ = ["available", "generate"]

_ENGINE: dict[str, object] = {}  # folder -> vllm.LLM, at most one entry


def available() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _engine(path: str):
    if path in _ENGINE:
        return _ENGINE[path]
    _release()
    import vllm

    # Leave room for the HF copy of the model the harness also holds (input-dependence scoring).
    memory = float(os.environ.get("RLVR_VLLM_GPU_MEMORY", "0.8"))
    _ENGINE[path] = vllm.LLM(model=path, seed=0, gpu_memory_utilization=memory)
    return _ENGINE[path]


def _release() -> None:
    if not _ENGINE:
        return
    _ENGINE.clear()
    gc.collect()
    import torch

    torch.cuda.empty_cache()


def generate(model, tokenizer, prompts: Sequence[str], params, *, key_offset: int = 0) -> list:
    path = model if isinstance(model, str) else getattr(model, "name_or_path", None)
    if not path or not os.path.isdir(path):
        raise UserError("the vllm backend needs a model loaded from a local folder",
                        "save the model first, or use --backend hf")
    import vllm

    greedy = params.temperature == 0
    per_prompt = [vllm.SamplingParams(
        n=1 if greedy else params.n, temperature=params.temperature,
        top_p=1.0 if greedy else params.top_p, max_tokens=params.max_new_tokens,
        seed=params.seed * 1_000_003 + key_offset + i) for i in range(len(prompts))]
    results = _engine(str(path)).generate(list(prompts), per_prompt, use_tqdm=False)
    out = []
    for i, result in enumerate(results):
        for s in range(params.n):
            choice = result.outputs[0 if greedy else s]
            reason = "stop" if choice.finish_reason == "stop" else "length"
            out.append(Completion(i, s, choice.text, tuple(choice.token_ids), reason))
    return out
