"""Input dependence: the MI proxy on hand matrices, and batched scoring vs one-by-one."""

from __future__ import annotations

import math

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.errors import UserError
from rlvr.evaluation.diagnostics import input_dependence, logprob_matrix, mi_from_matrix
from rlvr.model.rollout import SamplingParams, encode_prompts, generate, load_model


def test_mi_of_hand_matrices():
    # Responses that ignore the prompt: every column constant → MI 0.
    flat = torch.tensor([[-3.0, -7.0], [-3.0, -7.0]])
    result = mi_from_matrix(flat)
    assert result.mi == pytest.approx(0.0, abs=1e-12) and result.max_mi == pytest.approx(math.log(2))
    # Perfectly prompt-specific: off-diagonal impossible → MI = log N, self rate 1.
    sharp = torch.tensor([[0.0, -1e4, -1e4], [-1e4, 0.0, -1e4], [-1e4, -1e4, 0.0]])
    result = mi_from_matrix(sharp)
    assert result.mi == pytest.approx(math.log(3)) and result.self_rate == 1.0
    # A hand-computed 2x2: column 0 = (log .6, log .2), column 1 = (log .1, log .3).
    m = torch.tensor([[math.log(0.6), math.log(0.1)], [math.log(0.2), math.log(0.3)]])
    expected = 0.5 * (math.log(0.6 / 0.4) + math.log(0.3 / 0.2))
    result = mi_from_matrix(m)
    assert result.mi == pytest.approx(expected) and result.self_rate == 1.0
    with pytest.raises(UserError):
        mi_from_matrix(torch.zeros(1, 1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(make_tiny_lm(tmp_path_factory.mktemp("tiny"), seed=2, eos_scale=2.0))


def _naive(model, prompt, response):
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
    return sum(logp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(response))


def test_batched_matrix_equals_one_pair_at_a_time(tiny):
    model, tokenizer = tiny
    prompts = encode_prompts(tokenizer, ["1+2=", "a much longer prompt here", "x"])
    responses = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
    matrix = logprob_matrix(model, prompts, responses, batch_size=4)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j].item() == pytest.approx(_naive(model, prompts[i], responses[j]),
                                                         abs=1e-4)


def test_input_dependence_on_generated_responses(tiny):
    model, tokenizer = tiny
    texts = [f"problem {i}: {i * 7} + {i}" for i in range(5)]
    completions = generate(model, tokenizer, texts, SamplingParams(temperature=0,
                                                                   max_new_tokens=12))
    result = input_dependence(model, encode_prompts(tokenizer, texts),
                              [c.token_ids for c in completions])
    assert result.n == 5 and 0.0 <= result.self_rate <= 1.0
    assert -1e-9 <= result.mi <= math.log(5) + 1e-9
    # Greedy responses are each their own prompt's argmax continuation: usually self-explained.
    assert result.self_rate >= 0.6
