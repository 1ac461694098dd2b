"""`rlvr select`: variance/LIMR ranking, training-set writing, show, errors (through main)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rlvr.cli import main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"0": [0.5, 0.5], "1": [0.0, 1.0], "2": [0.25, 0.75, 0.5],
                                   "3": [1.0]}))
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": str(i), "problem": f"{i}*3=", "answer": str(3 * i),
                                        "suite": "toy"}) + "\n" for i in range(4)))
    return tmp_path, history, pool


def test_variance_json_is_the_ranked_rows(capsys, files):
    _, history, pool = files
    code, out, err = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                          "--top", "2", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["index"] for r in rows] == [1, 2]
    assert rows[0] == {"rank": 1, "index": 1, "score": 0.5, "mean_accuracy": 0.5, "n": 2}


def test_variance_table_and_limr(capsys, files):
    _, history, pool = files
    code, out, _ = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                        "--keep", "1.0")
    assert code == 0 and "chosen by variance" in out and "3*3=" in out
    code, out, _ = _run(capsys, "select", "variance", "--history", history, "--top", "4",
                        "--score", "limr", "--json")
    assert code == 0 and all(r["n"] == 1 for r in json.loads(out))  # shortest list: 1 epoch


def test_write_train_save_and_show(capsys, files):
    tmp, history, pool = files
    out_file, sel = tmp / "train.parquet", tmp / "sel.json"
    code, out, err = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                          "--top", "2", "--json", "--write-train", out_file, "--format", "verl",
                          "--save", sel)
    assert code == 0, err
    assert len(json.loads(out)) == 2 and "wrote 2 example(s) × 64 copies" in err
    rows = pq.read_table(out_file).to_pylist()
    assert len(rows) == 128 and rows[0]["reward_model"]["ground_truth"] == "3"
    code, out, _ = _run(capsys, "select", "show", sel, "--json")
    assert code == 0 and [r["index"] for r in json.loads(out)] == [1, 2]
    code, out, _ = _run(capsys, "select", "show", out_file, "--json")
    assert [(e["index"], e["copies"]) for e in json.loads(out)] == [("1", 64), ("2", 64)]
    # Existing outputs are kept unless --force.
    code, _, err = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                        "--top", "1", "--write-train", out_file, "--format", "verl")
    assert code == 2 and "already exists" in err
    code, _, _ = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                      "--top", "1", "--write-train", out_file, "--format", "verl", "--copies",
                      "3", "--force")
    assert code == 0 and pq.read_table(out_file).num_rows == 3


def test_show_paper_anchors(capsys, train_pool_path):
    code, out, _ = _run(capsys, "select", "show", "--pool", train_pool_path, "--json")
    assert code == 0
    anchors = {e["name"]: e for e in json.loads(out)}
    assert anchors["π1"]["index"] == "124" and anchors["π1"]["answer"] == "12.8"
    assert anchors["π13"]["answer"] == "\\frac{4}{3}"


@pytest.mark.parametrize("history_content, extra, match", [
    ({"0": [0.5, "high"]}, (), "example '0' entry 1"),
    ({"0": []}, (), "example '0' has no accuracies"),
    ({"7": [0.0, 1.0]}, (), "'7' are not in the pool"),
    ({"0": [0.5]}, ("--format", "csv"), "unknown --format"),
])
def test_bad_input_is_one_line_and_writes_nothing(capsys, files, history_content, extra, match):
    tmp, history, pool = files
    history.write_text(json.dumps(history_content))
    out_file = tmp / "out.jsonl"
    code, out, err = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                          "--top", "1", "--write-train", out_file, *extra)
    assert code == 2 and match in err and err.count("\n") == 1
    assert not out_file.exists()


def test_pool_without_answers(capsys, files):
    tmp, history, pool = files
    pool.write_text(json.dumps({"id": "0", "problem": "q", "suite": "toy"}) + "\n")
    code, _, err = _run(capsys, "select", "variance", "--history", history, "--pool", pool,
                        "--top", "1")
    assert code == 2 and "pool.jsonl:1 has no 'answer'" in err


def test_snr_rejects_bad_keep_before_sampling(capsys, files, tmp_path):
    _, _, pool = files
    code, _, err = _run(capsys, "select", "snr", "--model", tmp_path / "missing", "--pool", pool,
                        "--samples", "4", "--keep", "2")
    assert code == 2 and "--keep" in err


def test_snr_command_end_to_end(capsys, files, tmp_path):
    from _tiny_lm import make_tiny_lm

    _, _, pool = files
    model = make_tiny_lm(tmp_path / "lm")
    out_file = tmp_path / "snr.jsonl"
    code, out, err = _run(capsys, "select", "snr", "--model", model, "--pool", pool,
                          "--samples", "4", "--top", "2", "--reward", "random",
                          "--max-new-tokens", "8", "--json", "--write-train", out_file,
                          "--copies", "2")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2 and all(r["n"] == 4 for r in rows)
    assert rows[0]["score"] >= rows[1]["score"]
    written = [json.loads(line)["id"] for line in out_file.read_text().splitlines()]
    assert written == [str(rows[0]["index"])] * 2 + [str(rows[1]["index"])] * 2


@pytest.mark.parametrize("pool", ["organism-add:3", "FILE"])
def test_show_lists_a_pool_without_the_paper_anchors(capsys, files, pool):
    # The default shows the paper's π1/π13 only in the paper's pool; any other pool is listed.
    pool = str(files[2]) if pool == "FILE" else pool
    code, out, err = _run(capsys, "select", "show", "--pool", pool, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == (3 if pool.startswith("organism") else 4)
    assert all(r["problem"] and r["answer"] for r in rows)


def test_show_all_lists_every_example(capsys, files):
    code, out, err = _run(capsys, "select", "show", "--pool", files[2], "--all", "--json")
    assert code == 0, err
    assert [r["index"] for r in json.loads(out)] == ["0", "1", "2", "3"]


def test_pool_ids_default_to_line_numbers_as_in_training_files(capsys, tmp_path):
    pool = tmp_path / "mine.jsonl"
    pool.write_text('{"problem": "1+1=", "answer": "2"}\n{"problem": "2+2=", "answer": "4"}\n')
    code, out, err = _run(capsys, "select", "show", "--pool", pool, "--json")
    assert code == 0, err
    assert [r["index"] for r in json.loads(out)] == ["1", "2"]
