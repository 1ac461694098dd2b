"""vLLM backend: used only when `import vllm` works and a CUDA GPU is present (never required).

vLLM loads weights itself, so it needs the model's folder: the path the model was loaded from
(`model.name_or_path`). It therefore sees the weights *on disk*: fine for `rlvr eval` on saved
checkpoints, wrong for a policy changed in memory (the trainer uses the `hf` backend). One
engine is kept at a time; moving to another folder (the next checkpoint) shuts the old one
down first (`LLM.shutdown()` where vLLM has it, else its engine core's), or the second
checkpoint's engine would not find the GPU memory the first still holds. Weights run in bf16
whatever the checkpoint stores: rlvr's trainer saves fp32, which vLLM's `dtype="auto"` would
run in fp16 (a narrower exponent range than the bf16 the model was trained under). Each prompt gets its own seed, (seed, prompt index), but vLLM draws its own random
numbers, so samples differ from the `hf` backend's; greedy agrees up to kernel numerics.
Written against vLLM's documented `LLM.generate` API; not exercised in CI (no GPU there).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
from collections.abc import Sequence

from rlvr.errors import UserError
from rlvr.model.sampling import Completion, end_of_turn_id

__all__ = ["available", "borrowed", "generate", "release"]

_ENGINE: dict[str, object] = {}  # folder -> vllm.LLM, at most one entry


def available() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _engine(path: str):
    if path in _ENGINE:
        return _ENGINE[path]
    release()
    import vllm

    # Leave room for the HF copy of the model the harness also holds (input-dependence scoring).
    memory = float(os.environ.get("RLVR_VLLM_GPU_MEMORY", "0.8"))
    _ENGINE[path] = vllm.LLM(model=path, seed=0, gpu_memory_utilization=memory,
                             dtype="bfloat16")
    return _ENGINE[path]


@contextlib.contextmanager
def borrowed(path: str, engine):
    """Serve `generate` for the model at `path` with an engine someone else owns (TRL's
    colocated one, already holding the policy's current weights); it is never shut down here."""
    release()
    _ENGINE[path] = engine
    try:
        yield engine
    finally:
        _ENGINE.pop(path, None)


def release() -> None:
    """Shut the cached engine down and give its GPU memory back (no-op without one)."""
    if not _ENGINE:
        return
    _, engine = _ENGINE.popitem()
    shutdown = getattr(engine, "shutdown", None)
    if not callable(shutdown):  # vLLM without LLM.shutdown(): stop the engine core itself
        core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
    if callable(shutdown):
        shutdown()
    del engine
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generate(model, tokenizer, prompts: Sequence[str], params, *, key_offset: int = 0) -> list:
    path = model if isinstance(model, str) else getattr(model, "name_or_path", None)
    if not path or not os.path.isdir(path):
        raise UserError("the vllm backend needs a model loaded from a local folder",
                        "save the model first, or use --backend hf")
    import vllm

    greedy = params.temperature == 0
    # vLLM stops at the model's EOS itself; the chat template's end of turn is added here as
    # the hf backend does (rollout.eos_token_ids), so both grade what precedes it.
    turn_end = end_of_turn_id(tokenizer)
    stop = [turn_end] if turn_end is not None else None
    per_prompt = [vllm.SamplingParams(
        n=1 if greedy else params.n, temperature=params.temperature,
        top_p=1.0 if greedy else params.top_p, max_tokens=params.max_new_tokens,
        stop_token_ids=stop, seed=params.seed * 1_000_003 + key_offset + i)
        for i in range(len(prompts))]
    results = _engine(str(path)).generate(list(prompts), per_prompt, use_tqdm=False)
    out = []
    for i, result in enumerate(results):
        for s in range(params.n):
            choice = result.outputs[0 if greedy else s]
            reason = "stop" if choice.finish_reason == "stop" else "length"
            out.append(Completion(i, s, choice.text, tuple(choice.token_ids), reason))
    return out
