"""Organism pretraining speed: seconds per step for the shipped config, against peers in the same run.

Peers (same model, same corpus, steps interleaved round-robin in this process):
  - 2 threads instead of 1 (the prototype found one thread per process faster on 2 shared cores);
  - plain random batches padded to the longest example, instead of length-bucketed batches.
It projects the full build time (config steps x seconds per step) and prints a markdown row.

    .venv/bin/python benchmarks/organism_build.py --steps 40
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from rlvr.organism.config import BuildConfig, load_config  # noqa: E402
from rlvr.organism.corpus import build_corpus  # noqa: E402
from rlvr.organism.model import make_model  # noqa: E402
from rlvr.organism.pretrain import _batch, _Sampler  # noqa: E402


class Variant:
    """One training setup; `step()` times one optimizer step of it."""

    def __init__(self, config: BuildConfig, corpus, threads: int, bucketed: bool):
        torch.manual_seed(0)
        self.config, self.corpus, self.threads, self.bucketed = config, corpus, threads, bucketed
        self.model = make_model(config.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=config.train.lr)
        self.sampler = _Sampler(corpus, 0)
        self.gen = torch.Generator().manual_seed(0)
        self.times: list[float] = []

    def step(self) -> None:
        torch.set_num_threads(self.threads)
        size = self.config.train.batch_size
        idx = (self.sampler(size) if self.bucketed else
               torch.randint(len(self.corpus.ids), (size,), generator=self.gen))
        start = time.perf_counter()
        inputs, targets, mask = _batch(self.corpus, idx)
        logits = self.model(input_ids=inputs).logits
        loss = (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * mask).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.times.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="build config TOML (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    args = parser.parse_args()
    config = load_config(args.config)
    corpus = build_corpus(dataclasses.replace(config.corpus, size=min(config.corpus.size, 20_000)), 0)
    variants = {"1 thread, length-bucketed (ours)": Variant(config, corpus, 1, True),
                "2 threads, length-bucketed": Variant(config, corpus, 2, True),
                "1 thread, padded random batches": Variant(config, corpus, 1, False)}
    # Round-robin, so load from other processes falls on every variant alike.
    for _ in range(args.steps + 3):
        for v in variants.values():
            v.step()
    secs = {name: sum(v.times[3:]) / len(v.times[3:]) for name, v in variants.items()}
    ours = secs["1 thread, length-bucketed (ours)"]
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")
    print("| variant | s/step | ratio to ours | projected build (s) |")
    print("|---|---|---|---|")
    for name, s in secs.items():
        print(f"| {name} | {s:.3f} | {s / ours:.2f} | {s * config.train.steps:.0f} |")


if __name__ == "__main__":
    main()
