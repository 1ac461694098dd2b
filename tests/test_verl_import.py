"""`rlvr import verl`: verl's checkpoint layout and accuracies become a run directory."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from rlvr.cli import main
from rlvr.errors import UserError
from rlvr.verl.importer import find_checkpoints, read_accuracy_json


@pytest.fixture(scope="module")
def verl_run(tmp_path_factory) -> Path:
    """A verl 0.9 default_local_dir with two steps saved with hf_model, plus its file log."""
    from _tiny_lm import make_tiny_lm

    root = tmp_path_factory.mktemp("verl") / "ckpt"
    for step in (20, 40):
        actor = root / f"global_step_{step}" / "actor"
        make_tiny_lm(actor / "huggingface", seed=step)
        (actor / "model_world_size_8_rank_0.pt").write_bytes(b"fsdp shard stand-in")
        (root / f"global_step_{step}" / "data.pt").write_bytes(b"")
    (root / "latest_checkpointed_iteration.txt").write_text("40")
    log = [{"step": s, "data": {"critic/score/mean": s / 100, "actor/entropy": 0.5,
                                "response_length/mean": 100.0, "timing_s/step": 30.0}}
           for s in (1, 2, 3)]
    log.insert(0, {"step": 0, "data": {"val-core/math500/acc/mean@1": 0.36}})
    log.append({"step": 3, "data": {"val-core/math500/acc/mean@1": 0.5}})
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log) + '{"st')
    return root


def test_import_builds_a_run_directory(tmp_path, verl_run):
    acc = tmp_path / "acc.json"
    acc.write_text(json.dumps({"124": [0.25, 0.5, 1.0], "682": [0.0, 0.125, 0.5]}))
    out = tmp_path / "runs" / "pi1_verl"
    code = main(["import", "verl", "--checkpoints", str(verl_run), "--accuracy-json", str(acc),
                 "--base-model", "/models/base", "--reward", "outcome", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-20", "step-40"]
    assert (out / "checkpoints" / "step-40" / "config.json").is_file()
    assert not (out / "checkpoints" / "step-40" / "model_world_size_8_rank_0.pt").exists()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert lines[1]["train_acc"] == {"124": 0.5, "682": 0.125}
    assert lines[1]["train_acc_mean"] == pytest.approx(0.3125)
    assert lines[2]["reward_mean"] == pytest.approx(0.03) and lines[0]["entropy"] == 0.5
    assert lines[2]["val_acc/math500"] == 0.5 and "val_acc/math500" not in lines[0]
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["kind"] == "import"
    assert config["model"]["path"] == "/models/base"
    assert config["reward"]["mode"] == "outcome"
    assert config["data"]["examples"] == ["124", "682"]
    assert "versions" in config and isinstance(config["seed"], int)


def test_eval_and_the_analysis_read_the_imported_run(tmp_path, verl_run):
    from _tiny_lm import make_tiny_lm

    base = make_tiny_lm(tmp_path / "base", seed=1, eos_scale=3.0)
    acc = tmp_path / "acc.json"
    acc.write_text(json.dumps([{"step": 1, "train_acc": {"124": 0.5}},
                               {"step": 2, "train_acc": {"124": 0.75}}]))
    out = tmp_path / "run"
    assert main(["import", "verl", "--checkpoints", str(verl_run), "--accuracy-json", str(acc),
                 "--base-model", str(base), "--reward", "none", "--link",
                 "--out", str(out)]) == 0
    assert (out / "checkpoints" / "step-20").is_symlink()
    assert (out / "checkpoints" / "step-0").resolve() == base.resolve()
    suite = tmp_path / "tiny.jsonl"
    suite.write_text("".join(json.dumps({"problem": f"{i}+1=", "answer": str(i + 1)}) + "\n"
                             for i in range(2)))
    assert main(["eval", "--run", str(out), "--suites", str(suite), "--max-new-tokens", "4",
                 "--device", "cpu", "--quiet"]) == 0
    for step in (0, 20, 40):
        assert (out / "eval" / f"step-{step}" / "summary.json").is_file()
    rundir = pytest.importorskip("rlvr.rundir.read")
    run = rundir.load_run(out)
    assert run.kind == "import" and run.examples == ("124",) and run.role == "entropy-only"
    assert [m.train_acc for m in run.metrics][:2] == [{"124": 0.5}, {"124": 0.75}]
    assert sorted(run.evals) == [0, 20, 40]
    report = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(report), "--quiet"]) == 0
    assert report.stat().st_size > 0


def test_export_manifest_supplies_reward_and_model(tmp_path, verl_run):
    export = tmp_path / "export"
    export.mkdir()
    (export / "rlvr_export.json").write_text(json.dumps({
        "examples": ["124"], "model": "Qwen/Qwen2.5-Math-1.5B",
        "reward": {"mode": "wrong_label", "label": None, "wrong_label_kind": "guessable",
                   "p": 0.5, "seed": 0}}))
    out = tmp_path / "run"
    assert main(["import", "verl", "--checkpoints", str(verl_run), "--export-dir", str(export),
                 "--link", "--out", str(out)]) == 0
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["reward"]["mode"] == "wrong_label"
    assert config["reward"]["wrong_label_kind"] == "guessable"
    assert config["model"]["path"] == "Qwen/Qwen2.5-Math-1.5B"


def test_step_without_weights_names_the_merger(tmp_path, verl_run):
    import shutil

    root = tmp_path / "ckpt"
    shutil.copytree(verl_run, root, symlinks=True)
    for f in (root / "global_step_40" / "actor" / "huggingface").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(UserError, match="verl.model_merger"):
        find_checkpoints(root)
    out = tmp_path / "run"
    assert main(["import", "verl", "--checkpoints", str(root), "--base-model", "b",
                 "--reward", "outcome", "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.parametrize("content, message", [
    ('{"124": [0.5, 1.5]}', "has accuracy 1.5"),
    ('{"124": 0.5}', "maps to float"),
    ('[{"step": 0, "train_acc": {}}]', "has step 0"),
    ("not json", "not valid JSON"),
    ("{}", "holds no accuracies"),
])
def test_bad_accuracy_files(tmp_path, content, message):
    path = tmp_path / "acc.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_accuracy_json(path)


def test_existing_run_directory_is_refused(tmp_path, verl_run, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("")
    assert main(["import", "verl", "--checkpoints", str(verl_run), "--base-model", "b",
                 "--reward", "outcome", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_reward_log_of_the_exported_module_becomes_train_acc(tmp_path, verl_run, monkeypatch):
    """The exported module logs from verl's worker threads; the import recovers the steps."""
    import importlib.util
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from rlvr.data.verl_parquet import write_verl_parquet
    from rlvr.grading.rewards import RewardSpec
    from rlvr.problem import Problem
    from rlvr.verl.export import VerlExport, export_verl

    pool = write_verl_parquet([Problem(id="7", problem="p", answer="5", suite="s",
                                       meta={"index": 7})], tmp_path / "pool.parquet")
    export = export_verl(VerlExport(examples=("7",), pool=pool, reward=RewardSpec(mode="format"),
                                    batch=2), tmp_path / "export")
    root = tmp_path / "ckpt"
    shutil.copytree(verl_run, root, symlinks=True)
    (root / "metrics.jsonl").unlink()
    monkeypatch.setenv("RLVR_ACC_LOG", str(root / "reward_log"))
    (root / "reward_log").mkdir()
    spec = importlib.util.spec_from_file_location("exported_reward", export / "rlvr_reward.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # two steps of 2 rows x 8 rollouts: step 1 has 4/16 right, step 2 has 12/16 right
    for right in (4, 12):
        answers = ["\\boxed{5}"] * right + ["\\boxed{6}"] * (16 - right)
        with ThreadPoolExecutor(4) as pool_:
            list(pool_.map(lambda a: module.compute_score(
                "rlvr", a, "5", {"index": 7, "split": "train"}), answers))
    module.compute_score("rlvr", "\\boxed{5}", "5", {"index": 0, "split": "test"})  # validation
    out = tmp_path / "run"
    assert main(["import", "verl", "--checkpoints", str(root), "--export-dir", str(export),
                 "--link", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["train_acc"] for x in lines] == [{"7": 0.25}, {"7": 0.75}]
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["reward"]["mode"] == "format" and config["data"]["examples"] == ["7"]
