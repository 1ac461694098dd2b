"""The context guard: a prompt plus its response must fit in the model's positions.

A model with learned position embeddings (GPT-2: 1,024; a small test model: 96) indexes out of
range once prompt + response runs past its table, and only when a sampled response happens to
run long, so a run can die hours in. `train` and `eval` therefore measure the longest prompt
they will render before any run folder exists and

- keep `max_new_tokens` when longest prompt + `max_new_tokens` fits;
- cap it to what fits, with a one-line warning, when at least `MIN_RESPONSE_TOKENS` remain
  (the capped value is what the run records, so a resume uses it too);
- stop with a one-line error when fewer remain: a response that short cannot hold a worked
  answer, and the fix (shorter prompts or another model) is the user's to choose.
"""

from __future__ import annotations

from rlvr.errors import UserError, warn

__all__ = ["MIN_RESPONSE_TOKENS", "fit_new_tokens", "max_positions"]

MIN_RESPONSE_TOKENS = 16
# Config names of the position limit across architectures (Llama/Qwen2, GPT-2, MPT, others).
_LIMIT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length",
               "seq_length", "n_ctx")


def max_positions(model) -> int | None:
    """The number of positions the model can attend over, or None when its config names none."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in _LIMIT_KEYS:
        value = getattr(text, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def fit_new_tokens(model, longest_prompt: int, max_new_tokens: int, *, what: str,
                   setting: str) -> int:
    """`max_new_tokens`, or the cap that fits the model's context (warned), or UserError.

    `what` names the prompts ("training", "evaluation"); `setting` is the flag or key the user
    would change, named in the messages.
    """
    limit = max_positions(model)
    if limit is None or longest_prompt + max_new_tokens <= limit:
        return max_new_tokens
    room = limit - longest_prompt
    if room < MIN_RESPONSE_TOKENS:
        raise UserError(
            f"the longest {what} prompt has {longest_prompt} tokens and the model has "
            f"{limit} positions, leaving {max(room, 0)} for a response (fewer than "
            f"{MIN_RESPONSE_TOKENS})",
            "use shorter prompts (a shorter --template, e.g. raw, or fewer items) or a model "
            "with a longer context")
    warn(f"{setting} capped from {max_new_tokens} to {room}: the longest {what} prompt "
         f"({longest_prompt} tokens) + {max_new_tokens} exceeds the model's {limit} positions")
    return room
