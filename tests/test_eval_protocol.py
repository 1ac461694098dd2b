"""`rlvr eval --protocol paper`: per-suite decoding as the paper measured, 3 s grading, and
generation that stops at the chat template's end-of-turn marker."""

from __future__ import annotations

import json
import tomllib

import pytest
import torch
from _tiny_lm import make_tiny_lm
from typer.testing import CliRunner

from rlvr.cli import app, main
from rlvr.errors import UserError
from rlvr.evaluation.protocols import PAPER_SUITES, protocol_settings
from rlvr.rl.presets import resolve

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory):
    """The tiny Llama with ChatML markers as special tokens; <|im_end|> likely but not sure."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_lm(tmp_path_factory.mktemp("chat") / "lm", eos_scale=0.0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.resize_token_embeddings(len(tokenizer))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():  # <|im_end|> outbids the model's favourite token where it leads
        head = model.get_output_embeddings().weight
        head[end] = 0.0
        ids = torch.randint(3, 60, (8, 20), generator=torch.Generator().manual_seed(0))
        favourite = model(input_ids=ids).logits.argmax(-1).flatten().mode().values
        head[end] = 1.05 * head[favourite]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_paper_settings_per_suite():
    got = protocol_settings("paper", list(PAPER_SUITES) + ["mine"], {})
    for suite in ("math500", "minerva_math", "olympiadbench", "mine"):
        s = got[suite]
        assert s.greedy and s.samples == 0
    for suite in ("aime24", "aime25", "amc23"):
        s = got[suite]
        assert not s.greedy and s.samples == 8 and s.temperature == 0.6 and s.top_p == 1.0
    assert {(s.max_new_tokens, s.grade_timeout_s, s.template) for s in got.values()} == {
        (3072, 3.0, "qwen25-math-cot")}
    flagged = protocol_settings("paper", ["aime24"], {"max_new_tokens": 16, "samples": None})
    assert flagged["aime24"].max_new_tokens == 16 and flagged["aime24"].samples == 8
    with pytest.raises(UserError, match="protocol"):
        protocol_settings("nope", ["math500"], {})


def test_generation_stops_at_the_end_of_turn_marker(chat_lm):
    from rlvr.data.prompts import render
    from rlvr.model.rollout import (
        SamplingParams,
        end_of_turn_id,
        eos_token_ids,
        generate,
        load_model,
    )

    model, tokenizer = load_model(chat_lm, device="cpu")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_id(tokenizer) == end and end in eos_token_ids(model, tokenizer)
    prompt = render("qwen25-math-cot", "What is 1+1?", tokenizer)
    out = generate(model, tokenizer, [prompt], SamplingParams(temperature=1.0, n=16,
                                                                max_new_tokens=40, seed=1))
    stopped = [c for c in out if c.finish_reason == "stop"]
    assert stopped and all(c.token_ids[-1] == end for c in stopped)
    assert all(end not in c.token_ids[:-1] for c in out)
    assert all("im_end" not in c.text for c in out)  # graded text is what precedes it


def test_no_chat_template_no_marker(tmp_path):
    from rlvr.model.rollout import end_of_turn_id, load_model

    _, tokenizer = load_model(make_tiny_lm(tmp_path / "lm"), device="cpu")
    assert end_of_turn_id(tokenizer) is None


def _suite_files(folder):
    folder.mkdir()
    rows = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(1, 4)]
    for name in ("math500", "aime24"):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_cli_protocol_paper_per_suite_records(chat_lm, tmp_path):
    data = _suite_files(tmp_path / "data")
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, [
        "eval", "--model", str(chat_lm), "--protocol", "paper", "--suites", "math500,aime24",
        "--data-dir", str(data), "--limit", "2", "--max-new-tokens", "12", "--out", str(out),
        "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "eval" / "step-0" / "summary.json").read_text())
    math500, aime = summary["suites"]["math500"], summary["suites"]["aime24"]
    assert "greedy_acc_strict" in math500 and math500["temperature"] == 0.0
    assert aime["samples"] == 8 and aime["temperature"] == 0.6
    assert "avg_at_k_strict" in aime and "greedy_acc_strict" not in aime
    assert "acc_lenient" in math500 and "avg_at_k_lenient" in aime  # lenient beside strict
    records = [json.loads(x) for x in (out / "eval" / "step-0" / "aime24.jsonl").open()]
    assert sorted({r["sample"] for r in records}) == list(range(1, 9))
    config = tomllib.loads((out / "config.toml").read_text())["eval"]
    assert config["protocol"] == "paper"
    assert config["per_suite"]["math500"]["grade_timeout_s"] == 3.0
    assert config["per_suite"]["aime24"]["max_new_tokens"] == 12  # the flag won


def test_cli_unknown_protocol_is_one_line(tmp_path, capsys):
    assert main(["eval", "--protocol", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "protocol" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_paper_training_validates_on_math500_as_the_papers_script(tmp_path):
    _suite_files(tmp_path / "data")  # the default suite applies where its file is
    cfg = resolve("paper", overrides={"data": {"examples": ["124"]},
                                      "eval": {"data_dir": str(tmp_path / "data")}})
    # val_temperature=0.6, n_val=1, test_freq=20: one sample at 0.6, not greedy
    assert cfg.eval.suites == ("math500",) and cfg.eval.protocol == ""
    assert (cfg.eval.greedy, cfg.eval.samples, cfg.eval.temperature) == (False, 1, 0.6)
    assert cfg.log.eval_every == 20
    with pytest.raises(UserError, match="protocol"):
        resolve("organism", sets=["eval.protocol='nope'"])
