"""Token-by-token decoding: the one sampling loop every decoder runs, and its noise.

`decode` drives any decoder with `prefill(ids, mask, positions)` → (R, V) logits,
`step(token, position)` → (R, V), `can_select()` and `select_rows(index)`: the fast K/V cache
or Hugging Face's own forward (`rlvr.model.policy.make_decoder`, behind `rlvr.model.rollout`)
and the seed-stacked decoder (`rlvr.model.stacked.StackedDecode`, behind `rlvr.rl.lockstep`).
The batch stops once every row has emitted EOS; a decoder that can drop rows sheds the finished
ones on the way.

Sampling noise is counter-based, a hash of (seed, prompt index, sample index, step, token)
(`row_keys`, `choose`), not a stream from one generator: a row's tokens are the same whatever
the batch size, the batching order, the rows beside it, or the device. So the trainer's
rollouts, a seed group's and the harness's samples are reproducible from the seed alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rlvr.errors import UserError
from rlvr.model import native_step
from rlvr.model.sampling import SamplingParams

__all__ = ["choose", "decode", "left_pad", "row_keys"]


def left_pad(prompt_ids: list[list[int]], pad_id: int):
    """Prompts as a left-padded batch: ids, mask and positions (each (B, P), on the CPU);
    positions count real tokens only, so a padded row decodes as it would alone."""
    batch, width = len(prompt_ids), max(len(p) for p in prompt_ids)
    if width == 0:
        raise UserError("a prompt encodes to zero tokens", "check the prompt template")
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, p in enumerate(prompt_ids):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def decode(decoder, ids, mask, positions, keys: torch.Tensor, params: SamplingParams,
           eos: Iterable[int], pad_id: int) -> list[tuple[tuple[int, ...], str]]:
    """Sample up to `params.max_new_tokens` tokens after each left-padded prompt row (B, P),
    row r's noise keyed by `keys[r]` (`row_keys`). Returns per row its tokens (ending with the
    EOS token when it stopped) and "stop" or "length". The decoder must hold B rows of
    P + max_new_tokens positions; everything runs on `ids.device`."""
    device, batch, budget = ids.device, ids.shape[0], params.max_new_tokens
    eos_ids = torch.tensor(sorted(eos), device=device)
    tokens = torch.full((batch, budget), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((batch,), budget, dtype=torch.long, device=device)
    stopped = torch.zeros(batch, dtype=torch.bool, device=device)
    active = torch.arange(batch, device=device)  # original rows still in the batch, (A,)
    alive = torch.ones(batch, dtype=torch.bool, device=device)  # (A,) not yet at EOS
    # Until a row ends or is dropped, the batch is every row, all alive: a step then skips
    # the masking and the gathers below (a few torch calls each, per token).
    whole, all_alive, row_keys_now = True, True, keys
    logits = decoder.prefill(ids, mask, positions)  # (B, V)
    position = positions[:, -1]  # (A,)
    start, run = 0, getattr(decoder, "run", None)
    if (run is not None and params.temperature > 0 and params.top_p == 1
            and device.type == "cpu" and native_step.sample_function() is not None):
        # the iterations before the first EOS and the last one, in one C++ call: they end
        # no row, so they are this loop's body without its bookkeeping
        start, logits, position = run(logits, position, keys, tokens, eos_ids, budget,
                                      params.temperature)
    for step in range(start, budget):
        token = choose(logits, params, row_keys_now, step)  # (A,)
        if not all_alive:
            token = torch.where(alive, token, torch.full_like(token, pad_id))
        if whole:
            tokens[:, step] = token
        else:  # a finished row's pad is what `tokens` holds already
            tokens[active, step] = token
        ended = (token == eos_ids[0]) if len(eos_ids) == 1 else torch.isin(token, eos_ids)
        if not all_alive:
            ended &= alive
        if bool(ended.any()):  # most steps end no row: skip its bookkeeping
            lengths[active[ended]] = step + 1
            stopped[active[ended]] = True
            alive &= ~ended
            all_alive = False
            if not bool(alive.any()):
                break
        if step + 1 == budget:
            break
        # Drop finished rows once they are a quarter of the batch, so a few long (looping)
        # responses stop carrying the dead rows' compute (model.generate keeps them all).
        if not all_alive and int((~alive).sum()) * 4 >= len(active) and decoder.can_select():
            index = alive.nonzero().squeeze(-1)
            decoder.select_rows(index)
            active, token, position, alive = active[index], token[index], position[index], alive[index]
            whole, all_alive, row_keys_now = False, bool(alive.all()), keys[active]
        position = position + 1
        logits = decoder.step(token, position)
    rows = []
    for seq, n, stop in zip(tokens.cpu().tolist(), lengths.cpu().tolist(),
                            stopped.cpu().tolist(), strict=True):
        rows.append((tuple(seq[:n]), "stop" if stop else "length"))
    return rows


def choose(logits: torch.Tensor, params: SamplingParams, keys: torch.Tensor,
           step: int) -> torch.Tensor:
    """The next token of each row of `logits` (B, V): argmax when greedy, else an exact draw
    from softmax(logits / temperature) within top-p, by the rows' keyed noise at `step`."""
    logits = logits.float()  # (B, V)
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    fused = native_step.sample_function() if logits.device.type == "cpu" else None
    if fused is not None and params.top_p == 1:
        return fused(logits, keys.contiguous(), step)  # the same draw, one pass, no buffers
    if params.top_p < 1:
        logits = _top_p_filter(logits, params.top_p)
    # Gumbel-max: argmax(logits + Gumbel noise) is an exact draw from softmax(logits).
    # −log(−log u), in place: the same values as the out-of-place expression, fewer buffers.
    gumbel = _uniform_noise(keys, step, logits.shape[-1]).log_().neg_().log_().neg_()  # (B, V)
    return logits.double().add_(gumbel).argmax(dim=-1)


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
    return torch.bitwise_right_shift(x, bits).bitwise_and_((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser: int64 arithmetic wraps, which is what the hash wants. In place
    on its own copy: a sampling step runs it over (rows × vocabulary) every token."""
    x = x + _GOLDEN
    x.bitwise_xor_(_shr(x, 30)).mul_(_MIX1)
    x.bitwise_xor_(_shr(x, 27)).mul_(_MIX2)
    return x.bitwise_xor_(_shr(x, 31))


def row_keys(seed: int, keys: list[tuple[int, int]], device) -> torch.Tensor:
    """One noise key per row from the sampling seed and the row's (prompt, sample) index."""
    prompt = torch.tensor([k[0] for k in keys], dtype=torch.long, device=device)
    sample = torch.tensor([k[1] for k in keys], dtype=torch.long, device=device)
    base = _mix(torch.full_like(prompt, seed))
    return _mix(_mix(base + prompt) + sample)  # (B,)


# (vocabulary size, device) → arange(V) · golden, the token part of every step's hash
_TOKEN_TERMS: dict = {}


def _token_terms(vocab: int, device) -> torch.Tensor:
    key = (vocab, str(device))
    if key not in _TOKEN_TERMS:
        _TOKEN_TERMS[key] = torch.arange(vocab, dtype=torch.long, device=device) * _GOLDEN
    return _TOKEN_TERMS[key]


def _uniform_noise(keys: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    step_keys = _mix(keys + step)  # (B,)
    bits = _mix(step_keys[:, None] + _token_terms(vocab, keys.device)[None, :])  # (B, V)
    # 53 random bits → float64 in (0, 1), never 0 or 1, so both logs stay finite.
    return _shr(bits, 11).double().add_(0.5).mul_(2.0 ** -53)
