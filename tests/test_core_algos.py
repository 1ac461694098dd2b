"""GRPO math on tiny tensors: hand-computed values and naive loops vs the vectorised code."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.rl import core_algos as ca


def test_grpo_advantage_hand_computed():
    # group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3) = 0.57735
    adv, zero_var = ca.group_advantages(torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1]), 4)
    s = math.sqrt(1 / 3)
    expected = [0.5 / (s + 1e-6), -0.5 / (s + 1e-6), -0.5 / (s + 1e-6), 0.5 / (s + 1e-6)]
    assert adv[:4].tolist() == pytest.approx(expected, rel=1e-6)
    assert adv[4:].tolist() == [0.0] * 4
    assert zero_var.tolist() == [False, True]


def test_dr_grpo_has_no_std_scaling():
    adv, _ = ca.group_advantages(torch.tensor([1.0, 0, 0, 0]), 4, scale_by_std=False)
    assert adv.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_group_advantages_naive_loop_equivalence():
    g = torch.Generator().manual_seed(0)
    rewards = torch.randint(0, 2, (6 * 5,), generator=g).float()
    adv, zero_var = ca.group_advantages(rewards, 5)
    for i in range(6):
        grp = rewards[i * 5:(i + 1) * 5].tolist()
        mean = sum(grp) / 5
        std = math.sqrt(sum((r - mean) ** 2 for r in grp) / 4)
        for j in range(5):
            assert adv[i * 5 + j].item() == pytest.approx((grp[j] - mean) / (std + 1e-6), abs=1e-5)
        assert bool(zero_var[i]) == (len(set(grp)) == 1)


def test_group_advantages_rejects_ragged_batch():
    with pytest.raises(ValueError, match="groups of 4"):
        ca.group_advantages(torch.zeros(6), 4)


def test_keep_groups_drops_zero_and_low_variance():
    rewards = torch.tensor([1.0, 1, 1, 1, 1, 0, 0, 0, 0.5, 0.6, 0.5, 0.6])
    assert ca.keep_groups(rewards, 4).tolist() == [False, True, True]
    assert ca.keep_groups(rewards, 4, min_std=0.1).tolist() == [False, True, False]


def test_agg_modes_hand_computed():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert ca.agg_loss(values, mask, "token-mean").item() == pytest.approx(10 / 4)
    assert ca.agg_loss(values, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert ca.agg_loss(values, mask, "seq-mean-token-sum-norm").item() == pytest.approx(
        (6 / 3 + 4 / 3) / 2)
    assert ca.agg_loss(values, mask, "seq-mean-token-sum-norm", norm_len=10).item() == (
        pytest.approx((0.6 + 0.4) / 2))


def test_agg_all_padding_is_zero_not_nan():
    for mode in ca.AGG_MODES:
        out = ca.agg_loss(torch.ones(2, 3), torch.zeros(2, 3), mode)
        assert out.item() == 0.0


@pytest.mark.parametrize("mode", ca.AGG_MODES)
def test_micro_batch_losses_sum_to_full_batch(mode):
    g = torch.Generator().manual_seed(1)
    values = torch.randn(6, 5, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.3).int()
    full = ca.agg_loss(values, mask, mode)
    parts = sum(
        ca.agg_loss(values[i:i + 2], mask[i:i + 2], mode, total_tokens=mask.sum().item(),
                    total_seqs=6, norm_len=5)
        for i in range(0, 6, 2)
    )
    assert parts.item() == pytest.approx(full.item(), abs=1e-6)


def test_ppo_clip_hand_computed():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    mask = torch.ones(1, 3)
    per_tok, clipped, ratio = ca.ppo_clip_loss(logp, old, torch.tensor([1.0]), mask)
    # A > 0: loss = −min(r, clip(r)) → −1.2 (clipped), −0.5, −1.1
    assert per_tok[0].tolist() == pytest.approx([-1.2, -0.5, -1.1], rel=1e-6)
    assert clipped[0].tolist() == [True, False, False]
    per_tok, clipped, _ = ca.ppo_clip_loss(logp, old, torch.tensor([-2.0]), mask)
    # A < 0: loss = −A·max(r, clip(r)) → 3.0, 1.6 (clipped at 0.8), 2.2
    assert per_tok[0].tolist() == pytest.approx([3.0, 1.6, 2.2], rel=1e-6)
    assert clipped[0].tolist() == [False, True, False]


def test_ppo_clip_naive_loop_equivalence():
    g = torch.Generator().manual_seed(2)
    logp, old = torch.randn(4, 6, generator=g) * 0.3, torch.randn(4, 6, generator=g) * 0.3
    adv = torch.randn(4, generator=g)
    per_tok, _, _ = ca.ppo_clip_loss(logp, old, adv, torch.ones(4, 6), clip_low=0.2,
                                     clip_high=0.28)
    for i in range(4):
        for t in range(6):
            r = math.exp(logp[i, t].item() - old[i, t].item())
            a = adv[i].item()
            expected = max(-a * r, -a * min(max(r, 0.8), 1.28))
            assert per_tok[i, t].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_kl_estimators_hand_computed():
    logp = torch.tensor([[math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25)]])
    d = math.log(2)
    assert ca.kl_penalty(logp, ref, "k1").item() == pytest.approx(d)
    assert ca.kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * d * d)
    assert ca.kl_penalty(logp, ref, "low_var_kl").item() == pytest.approx(0.5 + d - 1)
    assert ca.kl_penalty(logp, ref, "none").item() == 0.0
    # k3 is clamped at 10 for far-off tokens
    assert ca.kl_penalty(torch.tensor([[-30.0]]), torch.tensor([[0.0]]), "low_var_kl").item() == 10


def test_entropy_and_logprobs():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]]))
    ent = ca.entropy_from_logits(logits)
    assert ent.item() == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert ca.token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.25))
    uniform = ca.entropy_from_logits(torch.zeros(2, 7))
    assert uniform.tolist() == pytest.approx([math.log(7)] * 2)


def test_grpo_loss_combines_terms_with_documented_signs():
    logp = torch.zeros(2, 2, requires_grad=True)
    old = torch.zeros(2, 2)
    mask = torch.ones(2, 2)
    entropy = torch.full((2, 2), 2.0)
    ref = torch.full((2, 2), math.log(0.5))
    adv = torch.tensor([1.0, -1.0])
    loss, m = ca.grpo_loss(logp, old, adv, mask, entropy=entropy, ref_logp=ref, pg_coef=1.0,
                           entropy_coeff=0.001, kl_coef=0.1, kl_type="k1")
    # pg: token-mean of [-1,-1,1,1] = 0; entropy bonus −0.001·2; kl 0.1·log 2
    assert loss.item() == pytest.approx(0 - 0.002 + 0.1 * math.log(2), rel=1e-6)
    assert m["entropy"] == pytest.approx(2.0) and m["kl"] == pytest.approx(math.log(2))
    # entropy-only: pg_coef 0 leaves only the (negative) entropy bonus
    loss, _ = ca.grpo_loss(logp, old, adv, mask, entropy=entropy, pg_coef=0.0, entropy_coeff=0.5)
    assert loss.item() == pytest.approx(-1.0)


def test_grpo_loss_gradient_raises_logprob_of_positive_advantage():
    logp = torch.zeros(2, 1, requires_grad=True)
    loss, _ = ca.grpo_loss(logp, torch.zeros(2, 1), torch.tensor([1.0, -1.0]), torch.ones(2, 1))
    loss.backward()
    # gradient descent moves logp against the gradient: up for A > 0, down for A < 0
    assert logp.grad[0, 0] < 0 < logp.grad[1, 0]


def test_kl_needs_reference():
    with pytest.raises(ValueError, match="reference"):
        ca.grpo_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1),
                     kl_coef=0.1)
