"""Where did the gain come from: decomposition, post-saturation, label study, plots, report.

Reads only run directories (docs/run-format.md).
"""

from rlvr.analysis.decomposition import SuiteDecomposition, WaterfallRow, classify, decompose
from rlvr.analysis.labels import LabelRow, label_study
from rlvr.analysis.rundir import EvalRecord, EvalStep, Run, load_run
from rlvr.analysis.saturation import Saturation, analyze_saturation, saturation_step
from rlvr.analysis.study import Analysis, RunComparison, analyze

__all__ = [
    "Analysis",
    "EvalRecord",
    "EvalStep",
    "LabelRow",
    "Run",
    "RunComparison",
    "Saturation",
    "SuiteDecomposition",
    "WaterfallRow",
    "analyze",
    "analyze_saturation",
    "classify",
    "decompose",
    "label_study",
    "load_run",
    "saturation_step",
]
