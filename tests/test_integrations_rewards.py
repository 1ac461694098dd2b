"""The TRL and verl adaptors, called the way the engines call them."""

from __future__ import annotations

import inspect
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from rlvr.errors import UserError
from rlvr.integrations.trl import completion_text, reward_function
from rlvr.verl.reward import compute_score

RIGHT = "The wind pressure works out to \\boxed{12.8}."
WRONG = "The wind pressure works out to \\boxed{13}."
UNBOXED = "The answer is 12.8."


# --- TRL ------------------------------------------------------------------------------------

def _trl_call(fn, completions, **columns):
    """What GRPOTrainer._calculate_rewards passes (TRL 1.16)."""
    logged: dict[str, list[float]] = {}
    columns.setdefault("trainer_state", SimpleNamespace(global_step=3))
    return fn(
        prompts=["p"] * len(completions),
        completions=completions,
        completion_ids=[[1, 2]] * len(completions),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: logged.setdefault(name, []).append(value),
        **columns,
    ), logged


def test_trl_plain_completions():
    fn = reward_function("outcome")
    rewards, logged = _trl_call(fn, [RIGHT, WRONG, UNBOXED], answer=["12.8"] * 3)
    assert rewards == [1.0, 0.0, 0.0]
    assert all(isinstance(r, float) for r in rewards)
    assert logged["rlvr_outcome/format_boxed"] == [pytest.approx(2 / 3)]
    assert logged["rlvr_outcome/true_acc"] == [pytest.approx(1 / 3)]


def test_trl_chat_completions():
    fn = reward_function("outcome")
    chats = [[{"role": "assistant", "content": RIGHT}], [{"role": "assistant", "content": WRONG}]]
    rewards, _ = _trl_call(fn, chats, answer=["12.8", "12.8"])
    assert rewards == [1.0, 0.0]


def test_completion_text_shapes():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "user", "content": "q"},
                            {"role": "assistant", "content": "a1"},
                            {"role": "assistant", "content": "a2"}]) == "a2"
    assert completion_text([{"role": "assistant",
                             "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text([]) == ""
    with pytest.raises(UserError):
        completion_text(3.5)


@pytest.mark.parametrize("column,value", [
    ("answer", "12.8"),
    ("ground_truth", "12.8"),
    ("solution", "We find $p = 12.8$, so the answer is $\\boxed{12.8}$."),
    ("reward_model", {"style": "rule", "ground_truth": "12.8"}),
])
def test_trl_gold_columns(column, value):
    rewards, _ = _trl_call(reward_function("outcome"), [RIGHT, WRONG], **{column: [value, value]})
    assert rewards == [1.0, 0.0]


def test_trl_configurable_gold_column_and_clear_errors():
    fn = reward_function("outcome", gold_column="final")
    assert _trl_call(fn, [RIGHT], final=["12.8"])[0] == [1.0]
    with pytest.raises(UserError, match="final"):
        _trl_call(fn, [RIGHT], answer=["12.8"])
    with pytest.raises(UserError, match="answer"):
        _trl_call(reward_function("outcome"), [RIGHT], question=["q"])


def test_trl_name_says_the_mode():
    assert reward_function("outcome").__name__ == "rlvr_outcome"
    assert reward_function("format").__name__ == "rlvr_format"
    fn = reward_function("wrong_label", wrong_label_kind="guessable")
    assert fn.__name__ == "rlvr_wrong_label_guessable"


def test_trl_unknown_mode_fails_at_construction():
    with pytest.raises(UserError, match="outcome"):
        reward_function("correctness")


def test_trl_signature_accepts_what_trl_passes():
    params = inspect.signature(reward_function("none")).parameters
    assert "prompts" in params and "completions" in params
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_trl_modes_end_to_end():
    completions = [RIGHT, WRONG, UNBOXED, "\\boxed{12.7}"]
    gold = {"answer": ["12.8"] * 4}
    assert _trl_call(reward_function("format"), completions, **gold)[0] == [1.0, 1.0, 0.0, 1.0]
    assert _trl_call(reward_function("none"), completions, **gold)[0] == [0.0] * 4
    wrong = reward_function("wrong_label", label="12.7")
    rewards, logged = _trl_call(wrong, completions, **gold)
    assert rewards == [0.0, 0.0, 0.0, 1.0]
    assert logged["rlvr_wrong_label/true_acc"] == [0.25]


def test_trl_random_is_reproducible_and_varies_within_a_call():
    def run():
        fn = reward_function("random", seed=11)
        out = []
        for step in (1, 1, 2):  # two generation batches in step 1, one in step 2
            state = SimpleNamespace(global_step=step)
            out.append(_trl_call(fn, [RIGHT] * 32, answer=["12.8"] * 32,
                                 trainer_state=state)[0])
        return out

    first, second = run(), run()
    assert first == second
    assert len(set(first[0])) == 2  # not one constant reward for the whole batch
    assert first[0] != first[1] and first[0] != first[2]


def test_trl_random_differs_across_data_parallel_ranks(monkeypatch):
    def draws(rank):
        monkeypatch.setenv("RANK", rank)
        return _trl_call(reward_function("random", seed=11), [RIGHT] * 32, answer=["12.8"] * 32)[0]

    assert draws("0") != draws("1")
    assert draws("1") == draws("1")


# --- verl -----------------------------------------------------------------------------------

_VERL_KEYS = {"score", "acc", "pred", "extracted", "extracted_lenient", "format",
              "correct_strict", "correct_lenient", "timed_out", "reason", "reward_mode", "label"}


def test_verl_outcome():
    out = compute_score(data_source="dsr", solution_str=RIGHT, ground_truth="12.8",
                        extra_info={"index": 124, "split": "train"})
    assert out["score"] == 1.0 and out["acc"] == 1.0 and out["pred"] == "12.8"
    assert set(out) == _VERL_KEYS


def test_verl_keys_are_constant_and_never_none():
    # verl stacks each key across samples: every call must return the same keys, no None.
    outs = [compute_score("dsr", s, "12.8", {"index": 1}) for s in (RIGHT, UNBOXED, "", "\\boxed{}")]
    for out in outs:
        assert set(out) == _VERL_KEYS
        assert all(v is not None for v in out.values())
        assert isinstance(out["score"], float)


def test_verl_mode_from_extra_info():
    extra = {"index": 124, "reward_mode": "wrong_label", "label": "12.7"}
    assert compute_score("dsr", "\\boxed{12.7}", "12.8", extra)["score"] == 1.0
    out = compute_score("dsr", RIGHT, "12.8", extra)
    assert out["score"] == 0.0 and out["acc"] == 1.0 and out["label"] == "12.7"
    assert compute_score("dsr", UNBOXED, "12.8", {"reward_mode": "none"})["score"] == 0.0


def test_verl_mode_from_environment(monkeypatch):
    monkeypatch.setenv("RLVR_REWARD_MODE", "format")
    assert compute_score("dsr", WRONG, "12.8", {"index": 0})["score"] == 1.0
    monkeypatch.setenv("RLVR_REWARD_MODE", "wrong_label")
    monkeypatch.setenv("RLVR_WRONG_LABEL_KIND", "guessable")
    out = compute_score("dsr", "\\boxed{12.7}", "12.8", {"index": 0})
    assert out["score"] == 1.0 and out["reward_mode"] == "wrong_label"
    # extra_info wins over the environment.
    assert compute_score("dsr", RIGHT, "12.8", {"reward_mode": "outcome"})["score"] == 1.0


def test_verl_bad_mode_is_a_user_error(monkeypatch):
    monkeypatch.setenv("RLVR_REWARD_MODE", "correctness")
    with pytest.raises(UserError, match="outcome"):
        compute_score("dsr", RIGHT, "12.8", None)
    monkeypatch.setenv("RLVR_REWARD_MODE", "random")
    monkeypatch.setenv("RLVR_REWARD_P", "often")
    with pytest.raises(UserError, match="RLVR_REWARD_P"):
        compute_score("dsr", RIGHT, "12.8", None)


def test_verl_random_keys_by_example_and_response():
    extra = {"reward_mode": "random", "reward_seed": 3}
    scores = {compute_score("dsr", f"try {i} \\boxed{{1}}", "1", {**extra, "index": 7})["score"]
              for i in range(40)}
    assert scores == {0.0, 1.0}
    same = [compute_score("dsr", RIGHT, "12.8", {**extra, "index": np.int64(7)})["score"]
            for _ in range(3)]
    assert len(set(same)) == 1
    assert same[0] == compute_score("dsr", RIGHT, "12.8", {**extra, "index": 7})["score"]


def test_verl_ground_truth_shapes():
    assert compute_score("dsr", RIGHT, {"ground_truth": "12.8"}, None)["score"] == 1.0
    assert compute_score("olympiad", RIGHT, ["12.8"], None)["score"] == 1.0


def test_verl_from_worker_threads_like_its_reward_manager():
    items = [(RIGHT, "12.8", 1.0), (WRONG, "12.8", 0.0), (UNBOXED, "12.8", 0.0),
             ("\\boxed{\\frac{4}{3}}", "\\frac{4}{3}", 1.0)] * 8

    def call(item):
        response, gold, _ = item
        return compute_score(data_source="dsr", solution_str=response, ground_truth=gold,
                             extra_info={"index": 0, "split": "train"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(call, items))
    assert [o["score"] for o in outs] == [expected for *_, expected in items]
    assert not any(o["timed_out"] for o in outs)


def test_adaptors_do_not_import_the_engines():
    # Importing TRL or verl costs seconds and needs them installed; the adaptors need neither.
    code = ("import sys, rlvr.integrations.trl, rlvr.verl.reward; "
            "assert 'trl' not in sys.modules and 'verl' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
