"""`rollout.stop`: EOS only (the paper's rollouts) or also the chat template's end of turn."""

from __future__ import annotations

import tomllib

import pytest
from _tiny_lm import make_tiny_lm
from test_eval_protocol import chat_lm  # noqa: F401  (the fixture)

from rlvr.grading.rewards import RewardSpec, score
from rlvr.model.rollout import SamplingParams, generate, load_model, stop_token_ids
from rlvr.rl.presets import resolve


def test_eos_only_runs_past_the_end_of_turn(chat_lm):  # noqa: F811
    model, tokenizer = load_model(chat_lm, device="cpu")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end in stop_token_ids(model, tokenizer, "end_of_turn")
    assert end not in stop_token_ids(model, tokenizer, "eos")
    params = SamplingParams(temperature=1.0, n=16, max_new_tokens=40, seed=1)
    turn = generate(model, tokenizer, ["What is 1+1?"], params,
                    stop_ids=stop_token_ids(model, tokenizer, "end_of_turn"))
    eos = generate(model, tokenizer, ["What is 1+1?"], params,
                   stop_ids=stop_token_ids(model, tokenizer, "eos"))
    assert any(c.finish_reason == "stop" for c in turn)
    # this model's EOS row is zeroed: with EOS only nothing stops, and <|im_end|> is passed
    assert all(c.finish_reason == "length" and len(c.token_ids) == 40 for c in eos)
    assert any(end in c.token_ids for c in eos)


# What the grader reads under each choice, for a base model that closes its answer with
# <|im_end|> and then writes a new turn (decoded without special tokens, as rollouts are).
ANSWER = "P = kAv^3, so v^3 = 2048 and v = 12.8.\n\n\\boxed{12.8}"
RUN_ON = "\nuser\nRound it to an integer.\nassistant\nThat is \\boxed{13}."


@pytest.mark.parametrize("stop,text,finish,reward", [
    ("end_of_turn", ANSWER, "stop", 1.0),  # cut at <|im_end|>: the answer's own box
    ("eos", ANSWER + RUN_ON, "length", 0.0),  # the run-on's box is the last one
    ("eos", ANSWER + "\n", "stop", 1.0),  # <|endoftext|> right after the answer
])
def test_the_stop_choice_changes_what_the_paper_reward_reads(stop, text, finish, reward):
    assert score(RewardSpec(mode="paper"), text, "12.8", finish_reason=finish)[0] == reward


def test_the_paper_preset_records_eos_only_and_its_reward(tmp_path):
    cfg = resolve("paper", overrides={"data": {"examples": ["124"]}})
    assert cfg.rollout.stop == "eos" and cfg.reward.mode == "paper"
    assert resolve("organism").rollout.stop == "end_of_turn"


@pytest.mark.slow
def test_a_run_records_its_stop_setting(tmp_path):
    from rlvr.cli import main

    lm = make_tiny_lm(tmp_path / "lm")
    run = tmp_path / "run"
    assert main(["train", "--model", str(lm), "--example", "organism-add:3", "--steps", "1",
                 "--out", str(run), "--no-eval", "--no-progress", "--template", "raw",
                 "--set", "rollout.n=2", "--set", "rollout.max_new_tokens=4",
                 "--set", "optim.micro_batch_size=2", "--set", "rollout.stop=eos"]) == 0
    doc = tomllib.loads((run / "config.toml").read_text())
    assert doc["rollout"]["stop"] == "eos"
