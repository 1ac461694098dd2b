"""The pretraining corpus: training-split problems, each with one completion in a sampled mode.

Families are drawn uniformly; the mode of each example is drawn from its family's mix (or the
odd-first-operand mix, when the config gives one: a prompt-dependent prior). A fraction
`skill_fraction` of examples are *skill examples*: direct guesses (a share `skill_guess`) or
working completions (boxed or unboxed, half each) whose opening marker is not a training
target, so each mode's body is learnt from more data while the mode prior the model learns is
still exactly the configured mix. Everything comes
from one `numpy` generator seeded by the build seed, so the corpus is a function of the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlvr.organism.config import CorpusConfig
from rlvr.organism.modes import MODES, choose_modes, render_completion
from rlvr.organism.tasks import FAMILIES, sample_problem
from rlvr.organism.tokenizer import EOS, PAD, VOCAB

__all__ = ["Corpus", "build_corpus", "encode_chars", "mode_probs"]

_IDS = {tok: i for i, tok in enumerate(VOCAB)}
_UNK = VOCAB.index("<unk>")


def encode_chars(text: str) -> list[int]:
    """Same ids as the organism tokenizer (one per character), without its per-call overhead."""
    return [_IDS.get(ch, _UNK) for ch in text]


def mode_probs(cfg: CorpusConfig, family: str, ops: tuple[int, ...]) -> tuple[float, ...]:
    """The mode prior for one prompt: the family's mix, or its odd mix for an odd first operand."""
    if ops[0] % 2 == 1 and family in cfg.mix_odd:
        return cfg.mix_odd[family]
    return cfg.mix[family]


@dataclass(frozen=True)
class Corpus:
    ids: torch.Tensor  # (N, L) int64, right-padded with <pad>
    prompt_len: torch.Tensor  # (N,) tokens before the completion
    length: torch.Tensor  # (N,) tokens including <eos> when the completion ends
    modes: np.ndarray  # (N,) index into MODES
    families: np.ndarray  # (N,) index into the config's families
    skill: np.ndarray  # (N,) bool: a skill example (its mode marker is not a training target)


def build_corpus(cfg: CorpusConfig, seed: int) -> Corpus:
    rng = np.random.default_rng([seed, 1])
    families = list(cfg.mix)
    fam_idx = rng.integers(0, len(families), size=cfg.size)
    ops = [sample_problem(families[f], rng, heldout=False) for f in fam_idx]
    probs = np.array([mode_probs(cfg, families[f], o) for f, o in zip(fam_idx, ops, strict=True)])
    modes = choose_modes(probs, rng)
    u = rng.random(cfg.size)
    # Skill examples (drawn last, so skill_fraction = 0 leaves the stream above unchanged).
    skill = rng.random(cfg.size) < cfg.skill_fraction
    boxed = rng.random(cfg.size) < 0.5
    working = np.where(boxed, MODES.index("work"), MODES.index("unboxed"))
    guess = rng.random(cfg.size) < cfg.skill_guess
    modes = np.where(skill, np.where(guess, MODES.index("guess"), working), modes)
    rows, prompt_lens = [], []
    for f, o, m, ui, sk in zip(fam_idx, ops, modes, u, skill, strict=True):
        name, mode = families[f], MODES[m]
        right = ui < (cfg.guess_acc if mode == "guess" else cfg.work_acc)
        text, ends = render_completion(name, o, mode, right=bool(right),
                                       guess_rule=cfg.guess_rule)
        prompt = encode_chars(FAMILIES[name].prompt(o))
        rows.append(prompt + encode_chars(text) + ([_IDS[EOS]] if ends else []))
        # A skill example's first (mode-choosing) token is not trained: it teaches the body
        # without moving the mode prior, which only the other examples set.
        prompt_lens.append(len(prompt) + int(sk))
    width = max(map(len, rows))
    ids = np.full((cfg.size, width), _IDS[PAD], dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return Corpus(ids=torch.from_numpy(ids), prompt_len=torch.tensor(prompt_lens),
                  length=torch.tensor([len(r) for r in rows]), modes=modes, families=fam_idx,
                  skill=skill)
