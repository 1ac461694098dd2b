"""Train the model organism with TRL's GRPOTrainer, rewarded by rlvr (1-shot RLVR on TRL).

    python examples/trl_grpo_organism.py --example organism-add:3 --reward outcome \
        --steps 20 --out runs/trl_demo

The reward is `rlvr.integrations.trl.reward_function(mode)`: the same grader and reward modes
as `rlvr train`, so a TRL run and an rlvr run of the same example are comparable. The settings
mirror rlvr's `organism` preset where TRL has the knob (group size, lengths, temperature, lr,
AdamW, grad clip, entropy bonus, token-mean loss via TRL's `dapo` aggregation, GRPO std scaling)
and run on CPU (`use_cpu=True, bf16=False`: TRL's CPU settings). One step = `--copies` copies of
the example × `--num-generations` completions, one optimizer update.

`build_trainer` is also what benchmarks/train_step.py times as the TRL peer.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["build_trainer", "main"]


def build_trainer(*, model: str, example: str, reward: str = "outcome", label: str | None = None,
                  steps: int = 20, out: str = "runs/trl_demo", num_generations: int = 16,
                  copies: int = 1, max_completion_length: int = 64, temperature: float = 1.0,
                  lr: float = 3e-5, weight_decay: float = 0.0, beta: float = 0.0,
                  entropy_coef: float = 0.001, seed: int = 0, micro_batch_size: int | None = None,
                  **config_overrides):
    """A ready `GRPOTrainer` for one organism example; call `.train()` on it.

    `config_overrides` go to `GRPOConfig` unchanged (e.g. `disable_tqdm=True`).
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.integrations.trl import reward_function
    from rlvr.rl.problem_sets import organism_problem

    problem = organism_problem(example)
    rows = [{"prompt": problem.problem, "answer": problem.answer}] * copies
    completions = copies * num_generations
    micro = micro_batch_size or completions
    if completions % micro:
        raise ValueError(f"micro batch {micro} must divide the {completions} completions a step")
    config = GRPOConfig(
        output_dir=out, max_steps=steps, seed=seed, use_cpu=True, bf16=False,
        per_device_train_batch_size=micro, gradient_accumulation_steps=completions // micro,
        num_generations=num_generations, max_completion_length=max_completion_length,
        temperature=temperature, top_p=1.0, learning_rate=lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=weight_decay, max_grad_norm=1.0, optim="adamw_torch",
        beta=beta, entropy_coef=entropy_coef, loss_type="dapo", scale_rewards="group",
        epsilon=0.2, num_iterations=1, shuffle_dataset=False, disable_dropout=True,
        report_to="none", save_strategy="no", logging_steps=1, dataloader_num_workers=0,
        **config_overrides,
    )
    rewarder = reward_function(reward, label=label, gold_column="answer", seed=seed)
    return GRPOTrainer(model=model, reward_funcs=[rewarder], args=config,
                       train_dataset=Dataset.from_list(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="HF folder (default: the organism)")
    parser.add_argument("--example", default="organism-add:3")
    from rlvr.grading.rewards import REWARD_MODES

    parser.add_argument("--reward", default="outcome",
                        help=" | ".join(REWARD_MODES))
    parser.add_argument("--label", default=None, help="wrong_label: the replacement label")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-generations", type=int, default=16)
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/trl_demo")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    model = args.model
    if model is None:
        from rlvr.organism import default_path

        model = str(default_path())
    if not Path(model).is_dir():
        parser.error(f"model folder {model} does not exist")
    trainer = build_trainer(model=model, example=args.example, reward=args.reward,
                            label=args.label, steps=args.steps, out=args.out,
                            num_generations=args.num_generations,
                            max_completion_length=args.max_completion_length, lr=args.lr,
                            seed=args.seed)
    trainer.train()
    for record in trainer.state.log_history:
        if "reward" in record:
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()
                   if k in ("step", "reward", "rewards/rlvr_" + args.reward + "/mean",
                            "entropy", "completions/mean_length")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
