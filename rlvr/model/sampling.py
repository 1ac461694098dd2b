"""What a generation backend takes and returns: `SamplingParams` in, `Completion`s out, and
where a response ends (`end_of_turn_id`: the chat template's end-of-turn token).

Its own module so that `rlvr.model.rollout` (the `hf` loop, which dispatches to other backends) and
`rlvr.model.vllm_backend` (which builds `Completion`s) both import it and never each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlvr.errors import UserError

__all__ = ["Completion", "SamplingParams", "check_max_new_tokens", "end_of_turn_id"]


def check_max_new_tokens(value: int, key: str = "max_new_tokens") -> None:
    """The one rule of a response-length cap, wherever a config or a call carries one. Its
    value comes from a preset (rlvr.rl.presets) or an evaluation protocol
    (rlvr.evaluation.protocols), never from a default here."""
    if value < 1:
        raise UserError(f"{key} must be >= 1, got {value}")


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `temperature == 0` means greedy (then the n samples are identical);
    `max_new_tokens` is required (keyword)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = field(kw_only=True)
    n: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        check_max_new_tokens(self.max_new_tokens)
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


def end_of_turn_id(tokenizer) -> int | None:
    """The token the chat template puts right after an assistant message (<|im_end|>,
    <|eot_id|>, ...), when it is one special token; None without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    from jinja2 import TemplateError

    marker = "RLVR_END_OF_TURN_PROBE"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "1"}, {"role": "assistant", "content": marker}],
            tokenize=False)
    except (TemplateError, ValueError, TypeError, KeyError):
        return None  # a template that rejects this exchange marks no end of turn
    after = text.partition(marker)[2].strip()
    if not after:
        return None
    first = tokenizer(after, add_special_tokens=False)["input_ids"][:1]
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    added = {int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}) or {}}
    if first and int(first[0]) in special | added:
        return int(first[0])
    return None
