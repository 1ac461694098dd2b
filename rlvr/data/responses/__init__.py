"""Responses another harness wrote, turned into rlvr evaluation folders (`rlvr import responses`).

One module per format family: `qwen_eval` (Qwen2.5-Math's evaluation jsonl), `ttrl` (the
Spurious-Rewards / TTRL export), `verl_dump` (verl's `trainer.validation_data_dir`), `plain`
(our jsonl); `sources` finds the files and their steps and detects the format; `items` holds
what they share (the parsed item, bounded reading, golds as harnesses store them); `grade`
grades, compares with the harness's labels and builds the records. Format details:
docs/evaluation.md ("Bring your own outputs").
"""

from rlvr.data.responses.grade import Agreement, graded_records
from rlvr.data.responses.items import Item, Parsed, Response
from rlvr.data.responses.sources import IMPORT_FORMATS, parse_paths

__all__ = ["IMPORT_FORMATS", "Agreement", "Item", "Parsed", "Response", "graded_records",
           "parse_paths"]
