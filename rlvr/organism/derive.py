"""A weaker organism derived from a built one: the same modes, less latent working skill.

Mechanism: continued pretraining on the organism's own corpus in which a working completion's
final answer is right only with probability `work_acc` (otherwise it is slipped by ten, a
dropped carry: `corpus.work_acc`). The mode mix, the guess rule and the architecture stay those
of the base build, so what changes is the accuracy *inside* the working mode: the latent skill
that 1-shot RL is claimed to select rather than teach (C8). A real LLM has the analogue in
noisier or thinner math pretraining. Deterministic in (base, work_acc, steps, seed); a few
hundred steps on one thread take a minute or two on an idle core.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rlvr.errors import UserError

__all__ = ["derive"]


def derive(base: str | Path, out: str | Path, *, work_acc: float, steps: int = 400,
           lr: float = 1e-3, corpus_size: int = 20_000, seed: int = 0,
           threads: int = 1) -> Path:
    """Write a weaker copy of the organism at `base` into the new folder `out`."""
    import tomli_w
    from transformers import AutoModelForCausalLM

    from rlvr.organism.config import load_config
    from rlvr.organism.pretrain import pretrain
    from rlvr.organism.tokenizer import build_tokenizer
    from rlvr.rundir.write import atomic_dir, atomic_write_text, versions

    base, out = Path(base), Path(out)
    if not (base / "build_config.toml").is_file():
        raise UserError(f"{base} is not a built organism (no build_config.toml)")
    if out.exists():
        raise UserError(f"output folder {out} already exists", "choose a new folder")
    config = load_config(base / "build_config.toml")
    config = dataclasses.replace(
        config, seed=seed,
        corpus=dataclasses.replace(config.corpus, work_acc=work_acc, size=corpus_size),
        train=dataclasses.replace(config.train, steps=steps, lr=lr, warmup=0, threads=threads))
    model = AutoModelForCausalLM.from_pretrained(base)
    model.train()
    model, _ = pretrain(config, progress=False, start=model)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        build_tokenizer().save_pretrained(tmp)
        atomic_write_text(tmp / "build_config.toml", tomli_w.dumps(
            {**config.to_dict(), "versions": versions()}))
        # Not a build-config key (load_config would refuse it): a record beside it.
        atomic_write_text(tmp / "derived.toml", tomli_w.dumps(
            {"from": str(base), "work_acc": work_acc, "steps": steps, "lr": lr, "seed": seed}))
    return out
