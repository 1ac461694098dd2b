"""Input dependence (RAGEN-2's mutual-information proxy): does a response depend on its prompt?

For N prompts x_i and their responses y_j, score every pairing by teacher forcing:
L[i, j] = log p(y_j | x_i), summed over y_j's tokens. Then

    MI ≈ mean_j [ L[j, j] - log mean_i exp(L[i, j]) ]

(how much better a response is explained by its own prompt than by an average prompt; 0 for
an input-agnostic template, at most log N), and the rate at which argmax_i L[i, j] == j (chance
is 1/N). A model that copies one reasoning template regardless of the problem scores near 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlvr.errors import UserError
from rlvr.model.policy import forward_extra, token_logprobs

__all__ = ["InputDependence", "input_dependence", "logprob_matrix", "mi_from_matrix"]


@dataclass(frozen=True)
class InputDependence:
    n: int
    mi: float  # nats, in [0, log n] up to estimation noise
    self_rate: float  # fraction of responses best explained by their own prompt
    max_mi: float  # log n, the ceiling

    def to_dict(self) -> dict:
        return {"n": self.n, "mi": self.mi, "self_rate": self.self_rate, "max_mi": self.max_mi}


def mi_from_matrix(matrix: torch.Tensor) -> InputDependence:
    """The MI estimate and self-identification rate from L (rows: prompts, columns: responses)."""
    n = matrix.shape[0]
    if matrix.shape != (n, n) or n < 2:
        raise UserError(f"input dependence needs a square matrix of at least 2 pairs, got "
                        f"{tuple(matrix.shape)}")
    matrix = matrix.double()
    log_mean = torch.logsumexp(matrix, dim=0) - math.log(n)  # (N,) over prompts, per response
    mi = (matrix.diagonal() - log_mean).mean().item()
    self_rate = (matrix.argmax(dim=0) == torch.arange(n)).double().mean().item()
    return InputDependence(n=n, mi=mi, self_rate=self_rate, max_mi=math.log(n))


@torch.inference_mode()
def logprob_matrix(model, prompt_ids: Sequence[Sequence[int]],
                   response_ids: Sequence[Sequence[int]], *, batch_size: int = 32) -> torch.Tensor:
    """L[i, j] = sum of log p(response_j tokens | prompt_i), as a (N, N) float64 tensor."""
    n = len(prompt_ids)
    if n != len(response_ids):
        raise UserError("input dependence needs one response per prompt")
    if any(len(r) == 0 for r in response_ids) or any(len(p) == 0 for p in prompt_ids):
        raise UserError("input dependence needs non-empty prompts and responses")
    device = next(model.parameters()).device
    pairs = [(i, j) for i in range(n) for j in range(n)]
    scores = torch.zeros(n * n, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            seqs = [(list(prompt_ids[i]), list(response_ids[j])) for i, j in chunk]
            scores[start:start + len(chunk)] = _score(model, seqs, device)
    finally:
        model.train(was_training)
    return scores.view(n, n)


def _score(model, seqs: list[tuple[list[int], list[int]]], device) -> torch.Tensor:
    # Left padding puts every response at the end of its row, so only the last max-response
    # positions need logits (a full (B, T, vocab) tensor of a 150k vocabulary would not fit).
    width = max(len(p) + len(r) for p, r in seqs)
    keep = min(width, max(len(r) for _, r in seqs) + 1)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (p, r) in enumerate(seqs):
        ids[row, width - len(p) - len(r):] = torch.tensor(p + r)
        mask[row, width - len(p) - len(r):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    lengths = torch.tensor([len(r) for _, r in seqs])
    # target[b, t]: the token at position width-keep+1+t is one of row b's response tokens
    offsets = torch.arange(width - keep + 1, width)  # (K-1,)
    target = offsets[None, :] >= (width - lengths)[:, None]  # (B, K-1)
    ids, mask, positions, target = (x.to(device) for x in (ids, mask, positions, target))
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                   **forward_extra(model, keep)).logits
    logits = logits[:, -keep:-1].float()  # (B, K-1, V)
    logp = token_logprobs(logits, ids[:, width - keep + 1:])  # (B, K-1)
    return (logp * target).sum(-1).double().cpu()  # (B,)


def input_dependence(model, prompt_ids: Sequence[Sequence[int]],
                     response_ids: Sequence[Sequence[int]], *,
                     batch_size: int = 32) -> InputDependence:
    return mi_from_matrix(logprob_matrix(model, prompt_ids, response_ids, batch_size=batch_size))
