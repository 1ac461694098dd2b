"""A model that is not the organism, as a newcomer brings one (issue: real models and data).

The model of the issue is `_tiny_lm.make_short_gpt2`: GPT-2 with 96 positions and a
40-character tokenizer (no unknown token, EOS = newline) whose chat template it cannot encode.
With the documented defaults it must evaluate and train (the response length capped to the
context with a warning, the template falling back to `raw` with a notice) or stop with one
line, never a traceback. Hub ids resolve through a cache laid out here (no network).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from _tiny_lm import SHORT_CONTEXT, make_short_gpt2, make_tiny_lm

from rlvr.cli import main
from rlvr.errors import UserError


@pytest.fixture(scope="module")
def short_model(tmp_path_factory) -> Path:
    return make_short_gpt2(tmp_path_factory.mktemp("short") / "gpt2")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("RLVR_DATA_DIR", raising=False)


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# --- model sources: folders, files, Hub ids through the cache ---------------------------------
def _cache_model(cache: Path, repo: str) -> Path:
    """The Hub cache layout transformers reads: refs/main names a snapshot folder."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    make_tiny_lm(root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    return root / "snapshots" / commit


def test_a_cached_hub_id_resolves_offline(tmp_path):
    from rlvr.model.locate import resolve_model
    from rlvr.model.rollout import load_model

    snapshot = _cache_model(tmp_path / "hub-cache", "someone/tiny-llama")
    assert resolve_model("someone/tiny-llama") == snapshot
    model, _ = load_model("someone/tiny-llama", device="cpu")
    assert Path(model.name_or_path) == snapshot


def test_online_a_hub_id_downloads_into_the_cache_and_falls_back_to_it(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from rlvr.model import locate as models

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(models, "reachable", lambda url: True)
    asked = []

    def hub(repo, *, cache_dir, local_files_only=False, allow_patterns=None):
        root = Path(cache_dir) / f"models--{repo.replace('/', '--')}"
        if local_files_only:
            if not root.exists():
                raise LocalEntryNotFoundError("not cached")
            return str(next((root / "snapshots").iterdir()))
        asked.append(allow_patterns)
        if root.exists():
            raise OSError("connection reset")  # the Hub fails: the cached copy is used
        return str(_cache_model(Path(cache_dir), repo))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    first = models.resolve_model("someone/new-model")
    assert first.parent.parent.name == "models--someone--new-model"
    assert "*.safetensors" in asked[0] and "*.bin" not in asked[0]
    assert models.resolve_model("someone/new-model") == first and len(asked) == 2


@pytest.mark.parametrize("command", ["eval", "train"])
def test_an_uncached_hub_id_offline_is_one_line_with_the_download_command(
        command, tmp_path, capsys):
    args = {"eval": ["eval", "--model", "Qwen/Qwen2.5-Math-1.5B", "--suites", "organism-add",
                     "--out", tmp_path / "out"],
            "train": ["train", "--model", "Qwen/Qwen2.5-Math-1.5B", "--example",
                      "organism-add:3", "--out", tmp_path / "out"]}[command]
    code, _, err = _run(args, capsys)
    line = _one_error_line(err)
    assert code == 2 and "hf download Qwen/Qwen2.5-Math-1.5B" in line
    assert "not in the Hugging Face cache" in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["./no-such-model", "/no/such/model", "runs/no-such-run"])
def test_a_path_that_does_not_exist_is_a_missing_folder_not_a_hub_lookup(
        spec, tmp_path, monkeypatch):
    from rlvr.model import locate as models

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(models, "_from_hub", lambda *a: pytest.fail(f"{spec} tried on the Hub"))
    with pytest.raises(UserError, match="model folder .* does not exist"):
        models.resolve_model(spec)


def test_a_file_as_model_is_reported_as_a_file(short_model, tmp_path, capsys):
    code, _, err = _run(["eval", "--model", short_model / "config.json", "--suites",
                         "organism-add", "--out", tmp_path / "out"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "is a file, not a model folder" in line and "config.json" in line


def test_eval_of_a_missing_model_without_suites_names_the_model(tmp_path, capsys):
    # The default suite of a non-organism model is math500: its data must not be the complaint.
    code, _, err = _run(["eval", "--model", "/nonexistent", "--out", tmp_path / "out"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "/nonexistent" in line and "math500" not in line


def test_export_refuses_a_missing_folder_but_passes_a_hub_id_to_verl(tmp_path, capsys):
    code, _, err = _run(["export", "verl", "--examples", "0", "--pool", tmp_path / "p.parquet",
                         "--model", "./no-such-model", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "model folder ./no-such-model does not exist" in _one_error_line(err)
    from rlvr.model.locate import local_folder

    assert local_folder("Qwen/Qwen2.5-Math-1.5B") is None  # verl downloads it on its machine


# --- the short-context model with the documented defaults -------------------------------------
def test_select_snr_caps_to_the_context(short_model, capsys):
    code, out, err = _run(["select", "snr", "--model", short_model, "--pool", "organism-add:3",
                           "--samples", "2", "--max-new-tokens", "200", "--top", "1", "--json"],
                          capsys)
    assert code == 0, err
    assert "--max-new-tokens capped from 200" in err and json.loads(out)



def test_eval_caps_to_the_context_and_falls_back_to_raw(short_model, tmp_path, capsys):
    out = tmp_path / "e"
    code, stdout, err = _run(["eval", "--model", short_model, "--suites", "organism-add",
                              "--limit", "3", "--samples", "0", "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "notice: using template raw" in err and "qwen25-math-cot" in err
    warning = next(line for line in err.splitlines() if line.startswith("warning:"))
    assert "capped from 256" in warning and f"{SHORT_CONTEXT} positions" in warning
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["eval"]["template"] == "raw"
    cap = config["eval"]["max_new_tokens"]
    assert 16 <= cap < 256
    records = [json.loads(line) for line in (out / "eval/step-0/organism-add.jsonl").open()]
    assert len(records) == 3 and all(r["n_tokens"] <= cap for r in records)


def test_an_explicit_template_the_tokenizer_cannot_encode_is_one_line(short_model, tmp_path,
                                                                     capsys):
    code, _, err = _run(["eval", "--model", short_model, "--suites", "organism-add",
                         "--template", "qwen25-math-cot", "--out", tmp_path / "e"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "--template raw" in line and not (tmp_path / "e").exists()


def test_a_row_the_tokenizer_cannot_encode_is_named(short_model, tmp_path, capsys):
    suite = tmp_path / "mine.jsonl"
    suite.write_text('{"problem": "1+1=", "answer": "2"}\n'
                     '{"id": "q2", "problem": "Quelle est 2+2?", "answer": "4"}\n')
    code, _, err = _run(["eval", "--model", short_model, "--suites", suite, "--out",
                         tmp_path / "e"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "'q2'" in line and "line 2" in line and "Q" in line


def test_a_prompt_longer_than_the_context_stops_before_any_folder(short_model, tmp_path, capsys):
    suite = tmp_path / "long.jsonl"
    suite.write_text(json.dumps({"problem": "1+" * 45 + "1=", "answer": "46"}) + "\n")
    code, _, err = _run(["eval", "--model", short_model, "--suites", suite, "--out",
                         tmp_path / "e"], capsys)
    line = _one_error_line(err)
    assert code == 2 and f"{SHORT_CONTEXT} positions" in line and not (tmp_path / "e").exists()


@pytest.mark.slow
def test_train_caps_the_rollout_and_skips_the_organism_suites(short_model, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = _run(["train", "--model", short_model, "--example", "organism-add:3",
                         "--steps", "1", "--set", "rollout.n=4", "--set",
                         "rollout.max_new_tokens=100", "--out", out,
                         "--no-progress"], capsys)
    assert code == 0, err
    assert "capped from 100" in err and "no training-time evaluation" in err
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["eval"]["suites"] == []
    assert 16 <= config["rollout"]["max_new_tokens"] < 100
    assert not (out / "eval").exists()  # never the organism's suites for another model
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert metrics[-1]["step"] == 1
    assert metrics[-1]["resp_len_max"] <= config["rollout"]["max_new_tokens"]


# --- evaluation follows the model -------------------------------------------------------------
def test_training_evaluation_follows_the_model(short_model, tmp_path, monkeypatch, capsys):
    from rlvr.rl.presets import resolve

    other = {"model": {"path": str(short_model)}}
    assert resolve("organism", overrides=other).eval.suites == ()
    assert "the organism's suites" in capsys.readouterr().err
    assert resolve("organism").eval.suites == ("organism",)  # the organism keeps its suites
    named = {**other, "eval": {"suites": ["organism-add"]}}
    assert resolve("organism", overrides=named).eval.suites == ("organism-add",)
    assert resolve("paper", overrides=other).eval.suites == ()  # no MATH500 file here
    assert "rlvr data fetch math500" in capsys.readouterr().err
    (tmp_path / "math500.jsonl").write_text('{"problem": "1+1=", "answer": "2"}\n')
    monkeypatch.setenv("RLVR_DATA_DIR", str(tmp_path))
    assert resolve("paper", overrides=other).eval.suites == ("math500",)


# --- grouped results --------------------------------------------------------------------------
def test_per_family_results_when_the_suite_has_a_family_field(tmp_path, capsys):
    model = make_tiny_lm(tmp_path / "llama")
    suite = tmp_path / "fam.jsonl"
    rows = [{"problem": f"{a}+{a}=", "answer": str(2 * a), "family": "add" if a % 2 else "dbl",
             "topic": "t" + str(a % 3)} for a in range(6)]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "e"
    code, stdout, err = _run(["eval", "--model", model, "--suites", suite, "--group-by",
                              "topic", "--max-new-tokens", "8", "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "fam by family" in stdout and "fam by topic" in stdout
    summary = json.loads((out / "eval/step-0/summary.json").read_text())
    groups = summary["suites"]["fam"]["groups"]
    assert {k: v["n_items"] for k, v in groups["family"].items()} == {"add": 3, "dbl": 3}
    assert set(groups["topic"]) == {"t0", "t1", "t2"}
    records = [json.loads(line) for line in (out / "eval/step-0/fam.jsonl").open()]
    correct = {r["id"]: r["correct_strict"] for r in records}
    expect = sum(correct[str(i)] for i in range(6) if i % 2) / 3
    assert groups["family"]["add"]["acc_strict"] == pytest.approx(expect)
    for value in groups["topic"].values():
        low, high = value["ci_strict"]
        assert 0.0 <= low <= value["acc_strict"] <= high <= 1.0
    assert records[1]["groups"] == {"family": "add", "topic": "t1"}
    page = tmp_path / "report.html"
    code, _, err = _run(["report", out, "-o", page], capsys)
    assert code == 0, err
    html = page.read_text()
    assert "Results by group" in html and "dbl" in html and "t2" in html


def test_group_by_a_column_no_suite_has_is_one_line(tmp_path, capsys):
    code, _, err = _run(["eval", "--suites", "organism-add", "--group-by", "colour", "--out",
                         tmp_path / "e"], capsys)
    assert code == 2 and "colour" in _one_error_line(err)


# --- layout -----------------------------------------------------------------------------------
def test_the_vllm_backend_does_not_import_rollout():
    code = ("import sys, rlvr.model.vllm_backend; "
            "sys.exit(1 if 'rlvr.model.rollout' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
