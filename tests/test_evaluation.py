"""Evaluation: records and summary as docs/run-format.md, metrics, flushing, CLI parity."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from _tiny_lm import make_tiny_lm

from rlvr.errors import UserError
from rlvr.evaluation.evaluate import EvalSettings, evaluate
from rlvr.evaluation.metrics import pass_at_k, pass_at_k_table, report_ks
from rlvr.model.rollout import load_model
from rlvr.problem import Problem
from rlvr.rundir.write import read_jsonl

RECORD_FIELDS = {"suite", "id", "sample", "gold", "response", "finish_reason", "n_tokens",
                 "extracted", "extracted_lenient", "format", "correct_strict", "correct_lenient",
                 "timed_out", "reason", "groups"}
SUITE_FIELDS = {"n_items", "samples", "temperature", "acc_strict", "acc_lenient", "pass_at_k",
                "format_rates", "mean_tokens"}
FORMATS = {"boxed", "unboxed", "empty_box", "no_answer", "truncated", "repetition"}


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny"), seed=1, eos_scale=2.0)


@pytest.fixture(scope="module")
def tiny(tiny_path):
    return load_model(tiny_path)


def _suite(name: str, n: int) -> list[Problem]:
    return [Problem(id=f"q{i}", problem=f"{i}+{i + 1}=", answer=str(2 * i + 1), suite=name)
            for i in range(n)]


SUITES = {"alpha": _suite("alpha", 5), "beta": _suite("beta", 3)}


def test_records_and_summary_follow_the_run_format(tiny, tmp_path):
    model, tokenizer = tiny
    settings = EvalSettings(samples=3, temperature=1.0, max_new_tokens=12, batch_size=4)
    summary = evaluate(model, tokenizer, SUITES, settings, run_dir=tmp_path, step=7,
                       progress=False)
    out = tmp_path / "eval" / "step-7"
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["step"] == 7 and set(summary["suites"]) == {"alpha", "beta"}
    for name, problems in SUITES.items():
        records = read_jsonl(out / f"{name}.jsonl")
        assert all(set(r) == RECORD_FIELDS for r in records)
        assert len(records) == len(problems) * 4  # greedy + 3 samples
        assert sorted((r["id"], r["sample"]) for r in records) == sorted(
            (p.id, s) for p in problems for s in range(4))
        assert all(r["format"] in FORMATS and r["finish_reason"] in ("stop", "length")
                   for r in records)
        stats = summary["suites"][name]
        assert SUITE_FIELDS <= set(stats) and set(stats["format_rates"]) == FORMATS
        assert stats["n_items"] == len(problems) and stats["samples"] == 3
        assert stats["pass_at_k"]["1"] == pytest.approx(stats["avg_at_k_strict"])
        assert list(stats["pass_at_k"]) == ["1", "2", "3"]
        greedy = [r for r in records if r["sample"] == 0]
        sampled = [r for r in records if r["sample"] > 0]
        # avg@k is the headline; greedy is kept beside it
        assert stats["acc_strict"] == pytest.approx(stats["avg_at_k_strict"])
        assert stats["acc_strict"] == pytest.approx(
            sum(r["correct_strict"] for r in sampled) / len(sampled))
        assert stats["greedy_acc_strict"] == pytest.approx(
            sum(r["correct_strict"] for r in greedy) / len(greedy))
        assert stats["mean_tokens"] == pytest.approx(
            sum(r["n_tokens"] for r in sampled) / len(sampled))


def test_correct_answers_are_counted(tiny, monkeypatch):
    """Feed the harness a fake generator that answers item i correctly iff i is even."""
    import rlvr.model.rollout as rollout
    from rlvr.model.rollout import Completion

    def fake_generate(model, tokenizer, prompts, params, **kwargs):
        offset = kwargs.get("key_offset", 0)
        out = []
        for i in range(len(prompts)):
            item = offset + i
            for s in range(params.n):
                right = item % 2 == 0 or (params.temperature > 0 and s == 0)
                answer = 2 * item + 1 if right else 999
                text = f"so \\boxed{{{answer}}}" if item != 4 else f"the answer is {answer}"
                out.append(Completion(i, s, text, (1, 2, 3), "stop"))
        return out

    monkeypatch.setattr(rollout, "generate", fake_generate)
    model, tokenizer = tiny
    settings = EvalSettings(samples=2, temperature=1.0, batch_size=2, max_new_tokens=256)
    stats = evaluate(model, tokenizer, {"alpha": SUITES["alpha"]}, settings,
                     progress=False)["suites"]["alpha"]
    # greedy: items 0, 2 boxed and right; item 4 right but unboxed (lenient only)
    assert stats["greedy_acc_strict"] == pytest.approx(2 / 5)
    assert stats["greedy_acc_lenient"] == pytest.approx(3 / 5)
    # samples: even items 2/2 right, odd items 1/2 → pass@2 = 1 everywhere, avg@2 = 0.8 lenient;
    # strictly, item 4 is never boxed: (2 + 2 + 0 + 1 + 1) / 10 = 0.6, the headline
    assert stats["pass_at_k_lenient"]["2"] == pytest.approx(1.0)
    assert stats["avg_at_k_lenient"] == pytest.approx(0.8)
    assert stats["acc_strict"] == stats["avg_at_k_strict"] == pytest.approx(0.6)
    assert stats["format_rates"]["boxed"] == pytest.approx(8 / 10)


def test_sampled_evaluation_does_not_depend_on_batch_size(tiny):
    model, tokenizer = tiny
    results = []
    for batch_size in (2, 64):
        settings = EvalSettings(greedy=False, samples=2, temperature=1.0, max_new_tokens=10,
                                batch_size=batch_size, seed=3)
        results.append(evaluate(model, tokenizer, SUITES, settings, progress=False))
    assert results[0] == results[1]


def test_model_that_emits_nothing_gives_no_answer_records(tiny_path, tmp_path):
    model, tokenizer = load_model(tiny_path)
    head = model.get_output_embeddings()
    bias = torch.zeros(head.weight.shape[0])
    bias[tokenizer.eos_token_id] = 1e4  # EOS first, always
    head.bias = torch.nn.Parameter(bias, requires_grad=False)
    summary = evaluate(model, tokenizer, SUITES, EvalSettings(max_new_tokens=8), run_dir=tmp_path,
                       progress=False)
    records = read_jsonl(tmp_path / "eval" / "step-0" / "alpha.jsonl")
    assert all(r["response"] == "" and r["format"] == "no_answer" and r["n_tokens"] == 1
               for r in records)
    assert summary["suites"]["alpha"]["format_rates"]["no_answer"] == 1.0


def test_partial_results_are_flushed(tiny, tmp_path, monkeypatch):
    import rlvr.evaluation.evaluate as evaluation

    real, calls = evaluation._record, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the user stops the run midway
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "_record", failing)
    model, tokenizer = tiny
    with pytest.raises(KeyboardInterrupt):
        evaluate(model, tokenizer, SUITES, EvalSettings(max_new_tokens=6, batch_size=64),
                 run_dir=tmp_path, progress=False)
    assert len(read_jsonl(tmp_path / "eval" / "step-0" / "alpha.jsonl")) == 3
    assert not (tmp_path / "eval" / "step-0" / "summary.json").exists()  # step not complete


def test_settings_validation():
    with pytest.raises(UserError, match="nothing to evaluate"):
        EvalSettings(greedy=False, samples=0, max_new_tokens=8)
    with pytest.raises(UserError, match="temperature 0"):
        EvalSettings(samples=4, temperature=0.0, max_new_tokens=8)
    with pytest.raises(UserError, match="max_new_tokens must be >= 1"):
        EvalSettings(max_new_tokens=0)
    with pytest.raises(UserError, match="unknown eval setting"):
        EvalSettings.from_dict({"sample": 4})
    with pytest.raises(UserError, match="no max_new_tokens"):
        EvalSettings.from_dict({"samples": 4})
    assert EvalSettings.from_dict({"samples": 4, "max_new_tokens": 8, "suites": ["x"]},
                                  ignore=["suites"]).samples == 4


def test_pass_at_k_matches_brute_force():
    for n in range(1, 7):
        for c in range(n + 1):
            for k in range(1, n + 1):
                draws = list(itertools.combinations([1] * c + [0] * (n - c), k))
                expected = sum(any(d) for d in draws) / len(draws)
                assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert report_ks(8) == [1, 2, 4, 8] and report_ks(6) == [1, 2, 4, 6] and report_ks(1) == [1]
    table = pass_at_k_table([[True, False], [False, False]])
    assert table == {"1": 0.25, "2": 0.5}
    assert math.isclose(pass_at_k(100, 1, 1), 0.01)


def _organism_or_tiny(tiny_path: Path) -> tuple[Path, str]:
    from rlvr.organism import default_path

    if (default_path() / "config.json").is_file():
        return default_path(), "organism-add"
    return tiny_path, "organism-add"  # before the organism ships: same contract, tiny model


def test_cli_model_evaluation_equals_direct_call(tiny_path, tmp_path):
    from rlvr.cli import main
    from rlvr.data.suites import load_suites

    path, suite = _organism_or_tiny(tiny_path)
    out = tmp_path / "run"
    code = main(["eval", "--model", str(path), "--suites", suite, "--limit", "4",
                 "--max-new-tokens", "16", "--template", "raw", "--samples", "2",
                 "--temperature", "1.0", "--out", str(out), "--quiet"])
    assert code == 0
    config = (out / "config.toml").read_text()
    assert 'kind = "eval"' in config and "[versions]" in config
    model, tokenizer = load_model(path)
    settings = EvalSettings(template="raw", samples=2, temperature=1.0, max_new_tokens=16)
    direct = evaluate(model, tokenizer, load_suites(suite, limit=4), settings, progress=False,
                      model_name=str(path))
    written = json.loads((out / "eval" / "step-0" / "summary.json").read_text())
    assert written == json.loads(json.dumps(direct))


def test_run_evaluation_matches_the_trainer_hook(tiny_path, tmp_path):
    """Issue 5 item 7: `rlvr eval --run` on a run's checkpoints reproduces, record for record,
    what the trainer's evaluation hook wrote for the same steps."""
    from rlvr.cli import main
    from rlvr.rl.config import config_from_dict, config_to_dict
    from rlvr.rl.problem_sets import eval_suites
    from rlvr.rl.trainer import Trainer
    from rlvr.rundir.write import write_config_toml

    path, suite = _organism_or_tiny(tiny_path)
    config = config_from_dict({
        "steps": 1, "model": {"path": str(path), "device": "cpu", "dtype": "float32"},
        "data": {"examples": [f"{suite}:0"], "template": "raw"},
        "rollout": {"n": 2, "max_new_tokens": 8},
        "eval": {"suites": [suite], "n_per_suite": 3, "samples": 2, "temperature": 1.0,
                 "batch_size": 4, "seed": 5}})
    run = tmp_path / "run"
    run.mkdir()
    write_config_toml(run / "config.toml", config_to_dict(config), seed=config.seed)
    trainer = Trainer(config, run)
    suites = eval_suites(config.eval)
    hook = {}
    for step in (0, 1):
        if step:
            trainer.step()
        hook[step] = trainer.evaluate(suites)
        trainer.save()
    shutil.move(run / "eval", tmp_path / "hook_eval")
    assert main(["eval", "--run", str(run), "--quiet"]) == 0
    for step in (0, 1):
        written = json.loads((run / "eval" / f"step-{step}" / "summary.json").read_text())
        expected = json.loads(json.dumps(hook[step]))
        written.pop("model"), expected.pop("model")
        assert written == expected
        name = f"step-{step}/{suite}.jsonl"
        assert (run / "eval" / name).read_text() == (tmp_path / "hook_eval" / name).read_text()
    assert main(["eval", "--run", str(run), "--quiet"]) == 0  # already evaluated: skipped


def test_cli_errors(tmp_path, capsys):
    from rlvr.cli import main

    assert main(["eval", "--model", str(tmp_path / "nope"), "--suites", "organism-add",
                 "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--suites", "bogus", "--out", str(tmp_path / "o")]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_evaluation_seed_draws_samples_not_items(tiny_path, tmp_path):
    """Issue 23 item 2: two sampled evaluations with different seeds share every item (they
    used to share 1 of 60), and their samples differ."""
    from rlvr.cli import main

    path, suite = _organism_or_tiny(tiny_path)
    ids, responses = [], []
    for seed in (11, 12):
        out = tmp_path / f"s{seed}"
        assert main(["eval", "--model", str(path), "--suites", suite, "--limit", "6",
                     "--max-new-tokens", "8", "--template", "raw", "--samples", "2",
                     "--no-greedy", "--temperature", "1.0", "--seed", str(seed),
                     "--out", str(out), "--quiet"]) == 0
        rows = [json.loads(line) for line in
                (out / "eval" / "step-0" / f"{suite}.jsonl").read_text().splitlines()]
        ids.append(sorted({r["id"] for r in rows}))
        responses.append([r["response"] for r in rows])
    assert ids[0] == ids[1] and len(ids[0]) == 6
    assert responses[0] != responses[1]


def test_a_run_with_items_drawn_the_old_way_still_reads(tmp_path, capsys):
    """Issue 23 item 2: records whose items the evaluation seed drew (before suites were fixed)
    still load; continuing such a run says its old steps hold other items."""
    from rlvr.cli.eval import _note_older_items
    from rlvr.data.suites import load_suites
    from rlvr.organism import heldout_suite
    from rlvr.rundir.read import load_run

    old = heldout_suite("add", n=5, seed=11)
    step = tmp_path / "run" / "eval" / "step-0"
    step.mkdir(parents=True)
    (tmp_path / "run" / "config.toml").write_text('kind = "eval"\n[eval]\nseed = 11\n')
    rows = [{"suite": "organism-add", "id": p.id, "sample": 1, "gold": p.answer,
             "response": "", "finish_reason": "stop", "n_tokens": 1, "format": "no_answer",
             "correct_strict": False, "correct_lenient": False} for p in old]
    (step / "organism-add.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = load_run(tmp_path / "run")
    assert [r.id for r in run.evals[0].records["organism-add"]] == [p.id for p in old]
    _note_older_items(tmp_path / "run", load_suites("organism-add", limit=5))
    assert "step(s) 0" in capsys.readouterr().err


def test_a_checkpoint_is_evaluated_as_its_run_evaluates_and_labelled_with_its_step(
        tiny_path, tmp_path, capsys):
    """Issue 23 item 3: `rlvr eval --model RUN/checkpoints/step-N` wrote "step 0" at T 0.6
    while the run evaluates at its training temperature."""
    import shutil
    import tomllib

    from rlvr.cli import main
    from rlvr.rundir.write import write_config_toml

    path, suite = _organism_or_tiny(tiny_path)
    run = tmp_path / "run"
    shutil.copytree(path, run / "checkpoints" / "step-7")
    write_config_toml(run / "config.toml", {
        "kind": "train", "model": {"path": str(path)}, "rollout": {"temperature": 0.9,
                                                                   "max_new_tokens": 8},
        "data": {"template": "raw"},
        "eval": {"suites": [suite], "n_per_suite": 3, "samples": 2, "temperature": 0.0,
                 "max_new_tokens": 0, "greedy": False}}, seed=0)
    out = tmp_path / "e"
    assert main(["eval", "--model", str(run / "checkpoints" / "step-7"), "--out", str(out),
                 "--quiet"]) == 0
    assert "is step 7 of" in capsys.readouterr().out
    summary = json.loads((out / "eval" / "step-7" / "summary.json").read_text())
    stats = summary["suites"][suite]
    assert (stats["n_items"], stats["samples"], stats["temperature"]) == (3, 2, 0.9)
    assert "greedy_acc_strict" not in stats
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["model"]["step"] == 7 and config["eval"]["max_new_tokens"] == 8
    out2 = tmp_path / "e2"  # flags given win
    assert main(["eval", "--model", str(run / "checkpoints" / "step-7"), "--out", str(out2),
                 "--temperature", "0.5", "--quiet"]) == 0
    summary = json.loads((out2 / "eval" / "step-7" / "summary.json").read_text())
    assert summary["suites"][suite]["temperature"] == 0.5
