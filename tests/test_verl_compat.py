"""An `rlvr export verl` folder read by verl's own code (skipped when verl is not installed).

verl refuses to train without a GPU, but its data loader and reward path run on CPU: the test
loads the exported parquet with verl's `RLHFDataset`, loads the reward module with verl's
`get_custom_reward_fn` (the code behind `reward.custom_reward_function.path/name`) and scores
responses through verl's `NaiveRewardManager.run_single`, which calls the function in a worker
thread of its event loop's executor, exactly as in training.

`.ci/run` runs this file inside a separate venv with verl (RLVR_CI_VERL=1); see .ci/run.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

verl = pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402  (verl's dependency)

from rlvr.data.verl_parquet import TRAIN_SUFFIX, write_verl_parquet  # noqa: E402
from rlvr.grading.rewards import RewardSpec  # noqa: E402
from rlvr.problem import Problem  # noqa: E402
from rlvr.verl.export import VerlExport, export_verl  # noqa: E402

CHAT = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    from _tiny_lm import make_char_tokenizer

    tok = make_char_tokenizer()
    tok.chat_template = CHAT
    return tok


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    problems = [
        Problem(id=str(i), problem=text, answer=gold, suite="pool", meta={"index": i})
        for i, (text, gold) in enumerate([("What is 2+3?", "5"), ("Wind pressure: find v.", "12.8"),
                                          ("Half of 8/3?", "\\frac{4}{3}")])
    ]
    return write_verl_parquet(problems, tmp_path_factory.mktemp("pool") / "pool.parquet")


def _export(tmp_path: Path, pool: Path, reward: RewardSpec, examples=("1",), batch=8) -> Path:
    spec = VerlExport(examples=tuple(examples), pool=pool, reward=reward, batch=batch)
    return export_verl(spec, tmp_path / "export")


def test_rlhf_dataset_reads_the_exported_parquet(tmp_path, pool, tokenizer):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    out = _export(tmp_path, pool, RewardSpec(), examples=("0", "2"), batch=8)
    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 1024,
                               "filter_overlong_prompts": True, "truncation": "error",
                               "cache_dir": str(tmp_path / "cache"),
                               "filter_overlong_prompts_workers": 1})
    dataset = RLHFDataset(str(out / "train.parquet"), tokenizer, config)
    assert len(dataset) == 8
    rows = [dataset[i] for i in range(len(dataset))]
    assert sorted(r["index"] for r in rows) == [0] * 4 + [2] * 4
    first = rows[0]
    assert first["raw_prompt"][-1]["role"] == "user"
    assert first["raw_prompt"][-1]["content"].endswith(TRAIN_SUFFIX)
    assert {r["reward_model"]["ground_truth"] for r in rows} == {"5", "\\frac{4}{3}"}
    assert first["extra_info"]["split"] == "train"


def _manager(out: Path, name: str, tokenizer):
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": str(out / "rlvr_reward.py"), "name": name, "reward_kwargs": {}}}})
    fn = get_custom_reward_fn(config)
    assert fn is not None
    return NaiveRewardManager(config, tokenizer, fn)


def _score(manager, tokenizer, response: str, gold: str, index: int) -> dict:
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer("question?", add_special_tokens=False)["input_ids"]
    answer = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    responses = torch.tensor([answer + [tokenizer.pad_token_id] * 3])
    mask = torch.tensor([[1] * (len(prompt) + len(answer)) + [0] * 3])
    data = DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt]), "responses": responses,
                 "attention_mask": mask},
        non_tensors={"data_source": np.array(["rlvr"], dtype=object),
                     "reward_model": np.array([{"ground_truth": gold, "style": "rule"}],
                                              dtype=object),
                     "extra_info": np.array([{"index": index, "split": "train"}], dtype=object)})
    threads = []
    original = manager.compute_score

    def spy(**kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return original(**kwargs)

    manager.compute_score = spy
    result = manager.loop.run_until_complete(manager.run_single(data))
    assert threads == [False], "verl must have called the reward off the main thread"
    return result


def test_outcome_reward_through_verls_reward_manager(tmp_path, pool, tokenizer):
    out = _export(tmp_path, pool, RewardSpec(mode="outcome"))
    manager = _manager(out, "compute_score", tokenizer)
    right = _score(manager, tokenizer, "so v = \\boxed{12.8}", "12.8", 1)
    wrong = _score(manager, tokenizer, "so v = \\boxed{12.7}", "12.8", 1)
    unboxed = _score(manager, tokenizer, "so v = 12.8", "12.8", 1)
    assert right["reward_score"] == 1.0 and right["reward_extra_info"]["acc"] == 1.0
    assert wrong["reward_score"] == 0.0 and unboxed["reward_score"] == 0.0
    # verl stacks every key across samples: the key set must not depend on the response
    assert set(right["reward_extra_info"]) == set(unboxed["reward_extra_info"])


def test_wrong_label_and_entropy_only_functions(tmp_path, pool, tokenizer):
    out = _export(tmp_path, pool, RewardSpec(mode="wrong_label", wrong_label_kind="guessable"))
    wrong_label = _manager(out, "compute_score", tokenizer)
    hit = _score(wrong_label, tokenizer, "\\boxed{12.7}", "12.8", 1)
    true = _score(wrong_label, tokenizer, "\\boxed{12.8}", "12.8", 1)
    assert hit["reward_score"] == 1.0 and hit["reward_extra_info"]["acc"] == 0.0
    assert true["reward_score"] == 0.0 and true["reward_extra_info"]["acc"] == 1.0
    entropy_only = _manager(out, "compute_score_entropy_only", tokenizer)
    zero = _score(entropy_only, tokenizer, "\\boxed{12.8}", "12.8", 1)
    assert zero["reward_score"] == 0.0 and zero["reward_extra_info"]["acc"] == 1.0


def test_validation_parquet_loads_in_rlhf_dataset(tmp_path, pool, tokenizer, benchmarks_dir):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    spec = VerlExport(examples=("1",), pool=pool, reward=RewardSpec(), batch=8,
                      val_suites=("aime24",), data_dir=benchmarks_dir)
    out = export_verl(spec, tmp_path / "export")
    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 4096,
                               "filter_overlong_prompts": True, "cache_dir": str(tmp_path / "c"),
                               "filter_overlong_prompts_workers": 1})
    dataset = RLHFDataset(str(out / "val_aime24.parquet"), tokenizer, config)
    assert len(dataset) == 30
    assert dataset[0]["data_source"] == "aime24"
    assert dataset[0]["extra_info"]["split"] == "test"


def test_zero_rewards_zero_verls_policy_gradient():
    """What run_entropy_only.sh relies on: reward 0 for all → verl's GRPO advantages are 0 and
    its clipped policy loss has gradient 0, so only the entropy bonus trains."""
    import numpy as np
    import torch
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_policy_loss_fn

    torch.manual_seed(0)
    mask = torch.ones(16, 5)
    groups = np.array(["a"] * 8 + ["b"] * 8)
    adv, _ = compute_grpo_outcome_advantage(torch.zeros(16, 5), mask, groups,
                                            norm_adv_by_std_in_grpo=True)
    assert torch.count_nonzero(adv) == 0
    config = OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2,
                               "clip_ratio_c": 3.0, "global_batch_info": {}})
    logp = torch.randn(16, 5, requires_grad=True)
    loss, _ = get_policy_loss_fn("vanilla")(
        old_log_prob=logp.detach() + 0.1 * torch.randn(16, 5), log_prob=logp, advantages=adv,
        response_mask=mask, loss_agg_mode="token-mean", config=config)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logp.grad) == 0
    # the same data with rewards that vary does move the policy: the check can fail
    varied = torch.zeros(16, 5)
    varied[::2, -1] = 1.0
    adv2, _ = compute_grpo_outcome_advantage(varied, mask, groups)
    assert torch.count_nonzero(adv2) > 0


@pytest.mark.parametrize("script", ["run_1shot.sh", "run_entropy_only.sh"])
def test_launch_scripts_compose_and_validate_in_verl(tmp_path, pool, script):
    """The scripts' overrides go through verl's own hydra config and `validate_config`."""
    import json
    import os
    import subprocess
    import sys

    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    out = _export(tmp_path, pool, RewardSpec(mode="format"), batch=128)
    fake = tmp_path / "bin"
    fake.mkdir()
    # a stand-in `python3` that records the arguments instead of starting verl (no GPU here)
    (fake / "python3").write_text(
        f"#!/bin/sh\nexec {sys.executable} -c 'import json, sys; "
        f"json.dump(sys.argv[1:], open(\"{tmp_path}/args.json\", \"w\"))' \"$@\"\n")
    (fake / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "CKPT_DIR": str(tmp_path / "ck"),
           "MODEL_PATH": "/models/Qwen2.5-Math-1.5B"}
    subprocess.run(["bash", str(out / script), "trainer.total_training_steps=40"], env=env,
                   check=True, cwd=tmp_path)
    args = json.loads((tmp_path / "args.json").read_text())
    assert args[:2] == ["-m", "verl.trainer.main_ppo"]
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=args[2:])
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg),
                    use_critic=need_critic(cfg))
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert (cfg.algorithm.adv_estimator, rollout.n, rollout.temperature) == ("grpo", 8, 0.6)
    assert (actor.optim.lr, actor.entropy_coeff, actor.loss_agg_mode) == (1e-6, 0.001, "token-mean")
    assert cfg.data.train_batch_size == actor.ppo_mini_batch_size == 128
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (1024, 3072)
    # exported without validation suites: validation is off, never run on the training file
    assert (cfg.trainer.save_freq, cfg.trainer.test_freq) == (20, -1)
    assert cfg.trainer.val_before_train is False
    assert cfg.trainer.total_training_steps == 40  # the extra argument overrides the script
    assert cfg.reward.custom_reward_function.path == str(out / "rlvr_reward.py")
    assert "hf_model" in actor.checkpoint.save_contents
    if script == "run_1shot.sh":
        assert cfg.reward.custom_reward_function.name == "compute_score"
        assert actor.use_kl_loss and actor.kl_loss_type == "low_var_kl"
        assert actor.kl_loss_coef == 0.001 and actor.optim.weight_decay == 0.01
    else:
        assert cfg.reward.custom_reward_function.name == "compute_score_entropy_only"
        assert not actor.use_kl_loss and actor.optim.weight_decay == 0.0
    assert (tmp_path / "ck" / "reward_log").is_dir()
