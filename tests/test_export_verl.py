"""`rlvr export verl`: the folder's contents, the paper's keys, and refusals that write nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
from pathlib import Path

import pytest

from rlvr.cli import main
from rlvr.data.verl_parquet import TRAIN_SUFFIX, read_verl_parquet, write_verl_parquet
from rlvr.errors import UserError
from rlvr.grading.rewards import RewardSpec
from rlvr.problem import Problem
from rlvr.verl.export import PAPER_KEYS, VerlExport, export_verl


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    problems = [Problem(id=str(i), problem=f"Problem {i}: compute it.", answer=gold, suite="pool",
                        meta={"index": i}) for i, gold in enumerate(["5", "12.8", "\\frac{4}{3}"])]
    return write_verl_parquet(problems, tmp_path_factory.mktemp("pool") / "pool.parquet")


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    """A data dir with a three-item math500.jsonl (the default validation suite)."""
    folder = tmp_path_factory.mktemp("benchmarks")
    rows = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(1, 4)]
    (folder / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"reward_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_a_complete_folder(tmp_path, pool, val_dir):
    out = tmp_path / "exp"
    code = main(["export", "verl", "--examples", "1,2", "--pool", str(pool), "--reward", "outcome",
                 "--copies", "128", "--data-dir", str(val_dir), "--out", str(out)])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "train.parquet", "val_math500.parquet", "rlvr_reward.py", "run_1shot.sh",
        "run_entropy_only.sh", "README.md", "rlvr_export.json"}  # MATH500 by default
    rows = read_verl_parquet(out / "train.parquet")
    assert len(rows) == 128
    assert sorted({p.id for p in rows}) == ["1", "2"]
    assert sum(p.id == "1" for p in rows) == 64
    assert rows[0].meta["prompt"][-1]["content"].endswith(TRAIN_SUFFIX)
    manifest = json.loads((out / "rlvr_export.json").read_text())
    assert manifest["examples"] == ["1", "2"] and manifest["golds"]["2"] == "\\frac{4}{3}"


def test_scripts_carry_the_paper_keys(tmp_path, pool, val_dir):
    out = export_verl(VerlExport(examples=("1",), pool=pool, reward=RewardSpec(),
                                 val_suites=("math500",), data_dir=val_dir), tmp_path / "e")
    main_script = (out / "run_1shot.sh").read_text()
    control = (out / "run_entropy_only.sh").read_text()
    for needle in ("algorithm.adv_estimator=grpo", "actor_rollout_ref.rollout.n=8",
                   "actor_rollout_ref.rollout.temperature=0.6",
                   "actor_rollout_ref.actor.optim.lr=1e-06",
                   "actor_rollout_ref.actor.use_kl_loss=True",
                   "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
                   "actor_rollout_ref.actor.kl_loss_coef=0.001",
                   "actor_rollout_ref.actor.entropy_coeff=0.001",
                   "actor_rollout_ref.actor.loss_agg_mode=token-mean",
                   "data.max_prompt_length=1024", "data.max_response_length=3072",
                   "trainer.save_freq=20", "trainer.test_freq=20",
                   "trainer.total_training_steps=2000", "data.train_batch_size=128",
                   "actor_rollout_ref.actor.ppo_mini_batch_size=128",
                   "reward.custom_reward_function.path=\"$HERE/rlvr_reward.py\"",
                   "actor_rollout_ref.rollout.dtype=bfloat16",
                   'data.val_files="[$HERE/val_math500.parquet]"',
                   "reward.custom_reward_function.name=compute_score \\"):
        assert needle in main_script, needle
    assert "reward.custom_reward_function.name=compute_score_entropy_only" in control
    assert "actor_rollout_ref.actor.use_kl_loss=False" in control
    assert "actor_rollout_ref.actor.optim.weight_decay=0.0" in control
    assert "actor_rollout_ref.actor.entropy_coeff=0.001" in control
    for script in ("run_1shot.sh", "run_entropy_only.sh"):
        subprocess.run(["bash", "-n", str(out / script)], check=True)
    assert len(PAPER_KEYS) == sum(f"    {k}=" in main_script for k in PAPER_KEYS)


def test_reward_module_bakes_the_mode_and_runs_in_a_thread(tmp_path, pool):
    spec = VerlExport(examples=("1",), pool=pool,
                      reward=RewardSpec(mode="wrong_label", wrong_label_kind="guessable"))
    out = export_verl(spec, tmp_path / "e")
    module = _load_module(out / "rlvr_reward.py")
    results = {}

    def call():
        # the row asks for `outcome`; the baked wrong_label must win
        extra = {"index": 1, "split": "train", "reward_mode": "outcome"}
        results["near"] = module.compute_score("rlvr", "\\boxed{12.7}", "12.8", extra)
        results["true"] = module.compute_score("rlvr", "\\boxed{12.8}", "12.8", extra)
        results["zero"] = module.compute_score_entropy_only("rlvr", "\\boxed{12.8}", "12.8", extra)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(60)
    assert results["near"]["score"] == 1.0 and results["near"]["acc"] == 0.0
    assert results["true"]["score"] == 0.0 and results["true"]["acc"] == 1.0
    assert results["zero"]["score"] == 0.0 and results["zero"]["reward_mode"] == "none"
    assert json.loads((out / "rlvr_export.json").read_text())["labels"] == {"1": "12.7"}


def test_stray_environment_label_is_refused(tmp_path, pool, monkeypatch):
    out = export_verl(VerlExport(examples=("0",), pool=pool, reward=RewardSpec()), tmp_path / "e")
    monkeypatch.setenv("RLVR_REWARD_LABEL", "7")
    with pytest.raises(RuntimeError, match="RLVR_REWARD_LABEL"):
        _load_module(out / "rlvr_reward.py")


@pytest.mark.parametrize("args, message", [
    (["--examples", "7"], "not in the pool"),
    (["--examples", "1", "--reward", "bogus"], "unknown reward mode"),
    (["--examples", "1", "--reward", "wrong_label"], "needs a replacement label"),
    (["--examples", "0,1,2", "--copies", "128"], "cannot hold 3 examples"),
    (["--examples", "1", "--val-suites", "nosuch"], "unknown suite"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, pool, capsys, args, message):
    out = tmp_path / "exp"
    code = main(["export", "verl", "--pool", str(pool), "--out", str(out), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_folder_is_refused(tmp_path, pool):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        export_verl(VerlExport(examples=("1",), pool=pool, reward=RewardSpec()), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_mode_verl_cannot_express_is_refused(pool):
    # RewardSpec validates names; a mode registered in rlvr but not expressible in verl would be
    # rejected by VerlExport itself, so check the guard directly with a look-alike spec.
    class Exotic:
        mode = "ranked"

    with pytest.raises(UserError, match="cannot be expressed in verl"):
        VerlExport(examples=("1",), pool=pool, reward=Exotic())  # type: ignore[arg-type]


def test_real_pool_pi1(tmp_path, train_pool_path):
    out = export_verl(VerlExport(examples=("124",), pool=train_pool_path, reward=RewardSpec()),
                      tmp_path / "pi1")
    rows = read_verl_parquet(out / "train.parquet")
    assert len(rows) == 128 and rows[0].answer == "12.8"
    original = next(p for p in read_verl_parquet(train_pool_path, missing_answer="skip")
                    if p.id == "124")
    assert rows[0].meta["prompt"] == original.meta["prompt"]


def test_validation_files_from_the_suites(tmp_path, pool, benchmarks_dir):
    out = tmp_path / "exp"
    code = main(["export", "verl", "--examples", "1", "--pool", str(pool), "--val-suites",
                 "math500,aime24", "--data-dir", str(benchmarks_dir), "--out", str(out)])
    assert code == 0
    math500 = read_verl_parquet(out / "val_math500.parquet")
    assert len(math500) == 500 and read_verl_parquet(out / "val_aime24.parquet")
    assert {p.meta["data_source"] for p in math500} == {"math500"}
    assert {p.meta["split"] for p in math500} == {"test"}
    script = (out / "run_1shot.sh").read_text()
    assert 'data.val_files="[$HERE/val_math500.parquet,$HERE/val_aime24.parquet]"' in script


def test_random_mode_draws_independently_per_call(tmp_path, pool):
    spec = VerlExport(examples=("1",), pool=pool, reward=RewardSpec(mode="random", p=0.5))
    out = export_verl(spec, tmp_path / "e")
    module = _load_module(out / "rlvr_reward.py")
    extra = {"index": 1, "split": "train"}
    scores = [module.compute_score("rlvr", "\\boxed{12.8}", "12.8", extra)["score"]
              for _ in range(200)]
    assert 60 < sum(scores) < 140  # one fixed response, yet the draws vary around p = 0.5
    assert "independent Bernoulli(p)" in (out / "README.md").read_text()


def test_validation_rows_are_scored_as_outcome(tmp_path, pool):
    spec = VerlExport(examples=("1",), pool=pool, reward=RewardSpec(mode="wrong_label",
                                                                     label="99"))
    module = _load_module(export_verl(spec, tmp_path / "e") / "rlvr_reward.py")
    train = module.compute_score("rlvr", "\\boxed{99}", "5", {"index": 1, "split": "train"})
    test = module.compute_score("math500", "\\boxed{99}", "5", {"index": 3, "split": "test"})
    right = module.compute_score("math500", "\\boxed{5}", "5", {"index": 3, "split": "test"})
    assert train["score"] == 1.0 and train["reward_mode"] == "wrong_label"
    assert test["score"] == 0.0 and right["score"] == 1.0 and right["reward_mode"] == "outcome"


def test_without_validation_suites_validation_is_off_and_off_the_reward_log(tmp_path, pool,
                                                                            monkeypatch):
    out = tmp_path / "e"
    code = main(["export", "verl", "--examples", "1,2", "--pool", str(pool), "--val-suites",
                 "none", "--out", str(out)])
    assert code == 0
    rows = read_verl_parquet(out / "val_train.parquet")
    assert sorted(p.id for p in rows) == ["1", "2"] and {p.meta["split"] for p in rows} == {"test"}
    for script in ("run_1shot.sh", "run_entropy_only.sh"):
        text = (out / script).read_text()
        assert 'data.val_files="[$HERE/val_train.parquet]"' in text
        assert "trainer.test_freq=-1" in text and "trainer.val_before_train=False" in text
        assert "train.parquet]" not in text.replace("val_train.parquet]", "")
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("RLVR_ACC_LOG", str(log))
    module = _load_module(out / "rlvr_reward.py")
    module.compute_score("rlvr", "\\boxed{12.8}", "12.8", {"index": 1, "split": "train"})
    module.compute_score("rlvr", "\\boxed{12.8}", "12.8",
                         {"index": rows[0].meta["index"], "split": rows[0].meta["split"]})
    logged = [json.loads(x) for f in log.iterdir() for x in f.read_text().splitlines()]
    assert len(logged) == 1  # the training call only: validation never enters the log


def test_reward_none_makes_every_script_the_entropy_only_control(tmp_path, pool, val_dir):
    out = export_verl(VerlExport(examples=("1",), pool=pool, reward=RewardSpec(mode="none"),
                                 val_suites=("math500",), data_dir=val_dir), tmp_path / "e")
    for script in ("run_1shot.sh", "run_entropy_only.sh"):
        text = (out / script).read_text()
        for needle in ("actor_rollout_ref.actor.use_kl_loss=False",
                       "actor_rollout_ref.actor.kl_loss_coef=0.0",
                       "actor_rollout_ref.actor.optim.weight_decay=0.0",
                       "actor_rollout_ref.actor.entropy_coeff=0.001"):
            assert needle in text, (script, needle)
        assert "kl_loss_coef=0.001" not in text and "weight_decay=0.01" not in text


def test_default_validation_needs_math500(tmp_path, pool, capsys, monkeypatch):
    monkeypatch.delenv("RLVR_DATA_DIR", raising=False)
    out = tmp_path / "e"
    code = main(["export", "verl", "--examples", "1", "--pool", str(pool),
                 "--data-dir", str(tmp_path / "empty"), "--out", str(out)])
    assert code == 2 and "math500" in capsys.readouterr().err and not out.exists()


def test_reward_module_is_a_short_stub_over_tested_code(tmp_path, pool):
    """The exported file only bakes settings; the code it runs is rlvr.verl.exported."""
    import ast

    spec = RewardSpec(mode="random", p=0.25, seed=7)
    out = export_verl(VerlExport(examples=("1",), pool=pool, reward=spec), tmp_path / "e")
    text = (out / "rlvr_reward.py").read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= 20
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    settings = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", "") == "SETTINGS")
    assert ast.literal_eval(settings) == {"reward_mode": "random", "label": None,
                                          "wrong_label_kind": None, "reward_p": 0.25,
                                          "reward_seed": 7}
