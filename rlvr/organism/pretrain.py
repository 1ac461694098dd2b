"""Pretrain an organism from its build config and write it as a Hugging Face checkpoint folder.

Deterministic: the corpus, the initial weights and the batch order all come from the config's
seed, and training runs on a fixed number of CPU threads, so the same config on the same
software gives the same weights (`tests/test_organism.py` checks this on a tiny config).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tomli_w
import torch
import torch.nn.functional as F

from rlvr.core.progress import bar
from rlvr.errors import UserError
from rlvr.organism.config import BuildConfig, PretrainConfig
from rlvr.organism.corpus import Corpus, build_corpus
from rlvr.organism.model import make_model
from rlvr.organism.tokenizer import build_tokenizer
from rlvr.rundir.write import atomic_dir, atomic_write_text, versions

__all__ = ["build", "pretrain"]


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, frac))))


def _batch(corpus: Corpus, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, next-token targets and the loss mask (completion tokens only: prompts are noise)."""
    width = int(corpus.length[idx].max())
    ids = corpus.ids[idx, :width]  # (B, T)
    pos = torch.arange(1, width)[None, :]  # (1, T-1): index of each target token
    mask = (pos >= corpus.prompt_len[idx, None]) & (pos < corpus.length[idx, None])  # (B, T-1)
    return ids[:, :-1], ids[:, 1:], mask


class _Sampler:
    """Batches of similar length (a random example picks the length bin, the batch comes from it).

    Every example is still equally likely to be drawn, and the loss is a token sum over a
    constant, so short (guess) and long (working) examples keep their corpus weights while
    padding, which would double the compute, nearly vanishes.
    """

    def __init__(self, corpus: Corpus, seed: int, bin_width: int = 4):
        self.order = torch.argsort(corpus.length, stable=True)  # (N,)
        bins = corpus.length[self.order] // bin_width
        _, counts = torch.unique_consecutive(bins, return_counts=True)
        self.ends = torch.cumsum(counts, 0)  # bin b is order[ends[b]-counts[b] : ends[b]]
        self.counts = counts
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, batch_size: int) -> torch.Tensor:
        anchor = int(torch.randint(len(self.order), (1,), generator=self.gen))
        b = int(torch.searchsorted(self.ends, anchor, right=True))
        start = int(self.ends[b] - self.counts[b])
        picks = torch.randint(int(self.counts[b]), (batch_size,), generator=self.gen)
        return self.order[start + picks]


def pretrain(config: BuildConfig, *, progress: bool = True, on_step=None, start=None):
    """Train a fresh model on a fresh corpus; returns (model, per-step mean token losses).

    `on_step(step, model, loss)`, if given, runs after each optimizer step (for diagnostics; it
    must not draw random numbers, or the build stops being a function of the seed). `start`, a
    model of the config's architecture, continues training it instead of a fresh one
    (`rlvr.organism.derive`).
    """
    tcfg = config.train
    with _threads(tcfg.threads):
        corpus = build_corpus(config.corpus, config.seed)
        torch.manual_seed(config.seed)
        model = make_model(config.model) if start is None else start
        model.train()
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg.weight_decay},
                                 {"params": rest, "weight_decay": 0.0}],
                                lr=tcfg.lr, betas=(0.9, 0.98))
        sampler = _Sampler(corpus, config.seed)
        # Mean trained tokens per example: the constant the token sum is divided by.
        norm = tcfg.batch_size * float((corpus.length - corpus.prompt_len).float().mean())
        losses: list[float] = []
        with bar("pretraining", tcfg.steps, enabled=progress, keep=True) as advance:
            for step in range(tcfg.steps):
                for group in opt.param_groups:
                    group["lr"] = _lr_at(step, tcfg)
                idx = sampler(tcfg.batch_size)
                inputs, targets, mask = _batch(corpus, idx)
                logits = model(input_ids=inputs).logits  # (B, T-1, V)
                nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T-1)
                loss = (nll * mask).sum() / norm
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                losses.append(float((nll.detach() * mask).sum() / mask.sum().clamp(min=1)))
                advance(info=f"loss {float(np.mean(losses[-50:])):.3f}")
                if on_step is not None:
                    on_step(step + 1, model, losses[-1])
    model.eval()
    return model, losses


def build(config: BuildConfig, out: str | Path, *, progress: bool = True,
          card: bool = True, on_step=None) -> Path:
    """Pretrain, save the checkpoint + build config, then measure and write the organism card."""
    out = Path(out)
    if out.exists():
        raise UserError(f"output folder {out} already exists",
                        "choose a new --out, or remove the old organism first")
    start = time.perf_counter()
    model, losses = pretrain(config, progress=progress, on_step=on_step)
    build_s = time.perf_counter() - start
    tokenizer = build_tokenizer()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(tmp / "build_config.toml", tomli_w.dumps(
            {**config.to_dict(), "versions": versions()}))
        if card:
            from rlvr.organism.card import measure_card, write_card

            info = {"build_seconds": round(build_s, 1), "final_loss": round(float(np.mean(losses[-50:])), 4),
                    "threads": config.train.threads}
            write_card(tmp, measure_card(model, tokenizer, config, info, progress=progress))
    return out
