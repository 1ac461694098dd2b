"""What a generation backend takes and returns: `SamplingParams` in, `Completion`s out.

Its own module so that `rlvr.rollout` (the `hf` loop, which dispatches to other backends) and
`rlvr.backends.*` (which build `Completion`s) both import it and never each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.errors import UserError

__all__ = ["Completion", "SamplingParams"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `temperature == 0` means greedy (then the n samples are identical)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    n: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise UserError(f"the number of samples must be >= 1, got {self.n}")


@dataclass(frozen=True)
class Completion:
    """One sampled response. `token_ids` ends with the EOS token when finish_reason == "stop"
    (the trainer trains on it: stopping is an action); `text` never contains it."""

    prompt_index: int
    sample_index: int
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str  # "stop" (EOS) or "length"
