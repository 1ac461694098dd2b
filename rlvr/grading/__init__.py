"""Grade a model response against a benchmark gold answer (see docs/grading.md).

The public names live in their own modules; this package only re-exports them: `grader` (the
`Grade` record and the decision rules), `batch` (`grade_many`), `extract`, `formats`.
"""

from rlvr.grading.batch import grade_many
from rlvr.grading.extract import extract_boxed, last_boxed
from rlvr.grading.formats import FORMATS
from rlvr.grading.grader import Grade, answers_equal, grade, warm_up

__all__ = [
    "FORMATS",
    "Grade",
    "answers_equal",
    "extract_boxed",
    "grade",
    "grade_many",
    "last_boxed",
    "warm_up",
]
