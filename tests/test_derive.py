"""A weaker organism derived from a built one keeps its modes and loses working skill."""

from __future__ import annotations

import tomllib

import pytest

from rlvr.errors import UserError
from rlvr.organism import default_path
from rlvr.organism.config import load_config
from rlvr.organism.derive import derive


def test_derive_writes_a_loadable_organism_with_its_record(tmp_path):
    if not (default_path() / "build_config.toml").is_file():
        pytest.skip("the shipped organism is absent")
    out = derive(default_path(), tmp_path / "weak", work_acc=0.5, steps=2, corpus_size=200)
    record = tomllib.loads((out / "derived.toml").read_text())
    assert record["work_acc"] == 0.5 and record["from"] == str(default_path())
    config = load_config(out / "build_config.toml")  # still a valid build config
    assert config.corpus.work_acc == 0.5
    from rlvr.model.rollout import load_model

    load_model(out)
    with pytest.raises(UserError, match="already exists"):
        derive(default_path(), out, work_acc=0.5, steps=2)


def test_derive_needs_a_built_organism(tmp_path):
    with pytest.raises(UserError, match="not a built organism"):
        derive(tmp_path, tmp_path / "out", work_acc=0.5)
