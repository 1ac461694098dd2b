"""Where did the gain come from: intervals, the style × format × skill decomposition,
post-saturation, label study, plots, report.

Reads only run directories (docs/run-format.md).
"""

from rlvr.analysis.compute import Analysis, RunComparison, analyze
from rlvr.analysis.labels import LabelRow, label_study
from rlvr.analysis.saturation import Saturation, analyze_saturation, saturation_step
from rlvr.core.stats import Estimate, across_seeds, item_accuracy, paired_gain
from rlvr.decomposition.gain import Decomposition, GainDecomposition, decompose
from rlvr.decomposition.styles import CLASSIFIERS, STYLES, default_classifier, style_of
from rlvr.rundir.read import EvalRecord, EvalStep, Run, load_eval_step, load_run

__all__ = [
    "CLASSIFIERS",
    "STYLES",
    "Analysis",
    "Decomposition",
    "Estimate",
    "EvalRecord",
    "EvalStep",
    "GainDecomposition",
    "LabelRow",
    "Run",
    "RunComparison",
    "Saturation",
    "across_seeds",
    "analyze",
    "analyze_saturation",
    "decompose",
    "default_classifier",
    "item_accuracy",
    "label_study",
    "load_eval_step",
    "load_run",
    "paired_gain",
    "saturation_step",
    "style_of",
]
