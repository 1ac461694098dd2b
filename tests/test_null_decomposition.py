"""The decomposition's pre-registered null test (issue 23 item 3).

Registered before it was first run: one model (the shipped organism), 20 pairs of independent
sampled evaluations of it on the same items (organism-add and organism-mul, 20 items each;
4 samples per item at temperature 1.0, 48 new tokens, raw template), the pair's seeds 2i+1 and
2i+2; each pair decomposed with the organism classifier (bootstrap seed i). Nothing changed
between the two sides, so each of the five terms' 95% intervals must contain 0 in at least
17 of the 20 pairs.
"""

from __future__ import annotations

import pytest

from rlvr.decomposition.gain import TERMS, decompose
from rlvr.evaluation.evaluate import EvalSettings, evaluate
from rlvr.rundir.read import load_eval_step

PAIRS = 20
REQUIRED = 17


@pytest.mark.slow
def test_independent_evaluations_of_one_model_split_into_terms_that_contain_zero(tmp_path):
    from rlvr.data.suites import load_suites
    from rlvr.model.rollout import load_model
    from rlvr.organism import default_path

    model, tokenizer = load_model(default_path(), device="cpu")
    suites = load_suites("organism-add,organism-mul", limit=20)

    def side(seed: int):
        settings = EvalSettings(greedy=False, samples=4, temperature=1.0, max_new_tokens=48,
                                batch_size=160, seed=seed)
        evaluate(model, tokenizer, suites, settings, run_dir=tmp_path / f"s{seed}",
                 progress=False)
        return load_eval_step(tmp_path / f"s{seed}" / "eval" / "step-0")

    covered = dict.fromkeys(TERMS, 0)
    for i in range(PAIRS):
        result, _ = decompose(side(2 * i + 1), side(2 * i + 2), classifier="organism", seed=i)
        assert result is not None and result.n_items == 40
        for term in TERMS:
            assert result.all.terms[term].has_interval
            covered[term] += result.all.terms[term].within_noise
    print(f"null test: pairs whose interval contains 0, per term: {covered}")
    assert all(n >= REQUIRED for n in covered.values()), covered
