"""The organism's build config: corpus (mode mixes, mode accuracies, size), model, training, card.

Frozen dataclasses, loadable from TOML; unknown keys, unknown families and mode mixes that do
not sum to 1 are a `UserError`. A mix is four weights in `MODES` order:
`(work, guess, unboxed, loop)`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.core.loader import build, load_toml
from rlvr.errors import UserError
from rlvr.organism.modes import GUESS_RULES, MODES
from rlvr.organism.tasks import FAMILIES

__all__ = ["ArchConfig", "BuildConfig", "CardConfig", "CorpusConfig", "PretrainConfig",
           "load_config", "parse_mix"]

Mix = tuple[float, float, float, float]

# Working + boxed is never the most likely opening, so greedy decoding picks a guess and the
# base model leaves 1-shot RL room to select the working mode.
DEFAULT_MIX: dict[str, Mix] = {
    "add": (0.30, 0.35, 0.20, 0.15),
    "sub": (0.25, 0.35, 0.25, 0.15),
    "mul": (0.25, 0.40, 0.20, 0.15),
    "expr": (0.20, 0.35, 0.25, 0.20),
}


def _check_mix(family: str, mix: Any, where: str) -> Mix:
    if family not in FAMILIES:
        raise UserError(f"unknown family {family!r} in {where}", f"choose from {', '.join(FAMILIES)}")
    try:
        values = tuple(float(v) for v in mix)
    except (TypeError, ValueError):
        raise UserError(f"{where}.{family} must be {len(MODES)} numbers ({', '.join(MODES)})") from None
    if len(values) != len(MODES) or any(not math.isfinite(v) or v < 0 for v in values):
        raise UserError(f"{where}.{family} must be {len(MODES)} non-negative weights "
                        f"({', '.join(MODES)}), got {list(mix)}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise UserError(f"{where}.{family} sums to {sum(values):.4g}, not 1",
                        f"give weights for {', '.join(MODES)} that add up to 1")
    return values  # type: ignore[return-value]


def _prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be a probability in [0, 1], got {value}")


def _positive(section: object, *names: str, allow_zero: tuple[str, ...] = ()) -> None:
    for name in (*names, *allow_zero):
        value = getattr(section, name)
        if value < 0 or (value == 0 and name not in allow_zero):
            bound = ">= 0" if name in allow_zero else "> 0"
            raise UserError(f"{type(section).__name__.removesuffix('Config').lower()}.{name} "
                            f"must be {bound}, got {value}")


@dataclass(frozen=True)
class CorpusConfig:
    size: int = 120_000  # distinct training examples (problem + completion)
    # What a direct guess writes: the carry-free "shortcut" (right exactly when no carry or
    # borrow occurs: ~30% of add/sub, ~9% mul, ~4% expr) or the true "answer" (one-pass arithmetic).
    guess_rule: str = "shortcut"
    guess_acc: float = 1.0  # P(a corpus guess follows its rule); otherwise it is slipped by + 10
    work_acc: float = 1.0  # P(the working's final answer is right); a wrong one is + 10
    skill_fraction: float = 0.7  # extra examples that teach a mode's body, not the mode choice
    # Share of those skill examples that are direct guesses (the rest: working, boxed and
    # unboxed half each). A tiny model needs thousands of guess batches to learn the carry-free
    # shortcut, and guesses are short, so this data is cheap.
    skill_guess: float = 0.6
    mix: dict[str, Mix] = field(default_factory=lambda: dict(DEFAULT_MIX))
    # Optional prompt-dependent priors: used instead of `mix` when the first operand is odd.
    mix_odd: dict[str, Mix] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.mix:
            raise UserError("corpus.mix names no family", "give at least one family's mix")
        object.__setattr__(self, "mix", {k: _check_mix(k, v, "corpus.mix") for k, v in self.mix.items()})
        odd = {k: _check_mix(k, v, "corpus.mix_odd") for k, v in self.mix_odd.items()}
        if set(odd) - set(self.mix):
            raise UserError(f"corpus.mix_odd names {sorted(set(odd) - set(self.mix))} "
                            "which corpus.mix does not", "add them to corpus.mix too")
        object.__setattr__(self, "mix_odd", odd)
        if self.guess_rule not in GUESS_RULES:
            raise UserError(f"corpus.guess_rule must be one of {', '.join(GUESS_RULES)}, "
                            f"got {self.guess_rule!r}")
        _prob("corpus.guess_acc", self.guess_acc)
        _prob("corpus.work_acc", self.work_acc)
        _prob("corpus.skill_fraction", self.skill_fraction)
        _prob("corpus.skill_guess", self.skill_guess)
        if self.size < 1:
            raise UserError(f"corpus.size must be >= 1, got {self.size}")


@dataclass(frozen=True)
class ArchConfig:
    hidden: int = 96
    layers: int = 4
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 1024

    def __post_init__(self) -> None:
        _positive(self, "hidden", "layers", "heads", "intermediate", "max_positions")
        if self.hidden % self.heads:
            raise UserError(f"model.hidden ({self.hidden}) must be a multiple of model.heads ({self.heads})")


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 8000
    batch_size: int = 40
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.01
    # A build has the machine to itself: 2 threads are 1.4-1.6x faster than 1 on our 2 cores
    # (docs/benchmarks.md). Parallel *runs* are the case for one thread per process.
    threads: int = 2

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "lr", "threads", allow_zero=("warmup", "weight_decay"))


@dataclass(frozen=True)
class CardConfig:
    n: int = 200  # held-out problems per family
    seed: int = 0  # suite and sampling seed
    temperature: float = 1.0
    max_new_tokens: int = 128

    def __post_init__(self) -> None:
        _positive(self, "n", "temperature", "max_new_tokens")


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ArchConfig = field(default_factory=ArchConfig)
    train: PretrainConfig = field(default_factory=PretrainConfig)
    card: CardConfig = field(default_factory=CardConfig)

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(self.corpus.mix)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("mix", "mix_odd"):
            d["corpus"][key] = {k: list(v) for k, v in d["corpus"][key].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildConfig:
        return build(cls, d, noun="key")

    def with_overrides(self, *, seed: int | None = None, mix: dict[str, Mix] | None = None) -> BuildConfig:
        cfg = self if seed is None else dataclasses.replace(self, seed=seed)
        if mix:
            merged = {**cfg.corpus.mix, **mix}
            cfg = dataclasses.replace(cfg, corpus=dataclasses.replace(cfg.corpus, mix=merged))
        return cfg


def load_config(path: str | Path | None) -> BuildConfig:
    """The default build config, or the one in a TOML file (missing keys keep their defaults)."""
    if path is None:
        return BuildConfig()
    data = load_toml(path, what="build config")
    # A built organism's build_config.toml also records the package versions: not a knob.
    data.pop("versions", None)
    return BuildConfig.from_dict(data)


def parse_mix(spec: str) -> tuple[str, Mix]:
    """`add=0.3,0.35,0.2,0.15` -> ("add", (0.3, 0.35, 0.2, 0.15)), validated."""
    family, sep, weights = spec.partition("=")
    if not sep:
        raise UserError(f"--mix {spec!r} is not FAMILY=w_work,w_guess,w_unboxed,w_loop")
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError:
        raise UserError(f"--mix {spec!r}: weights must be numbers") from None
    return family.strip(), _check_mix(family.strip(), values, "--mix")
