"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a `UserError` into a single line on stderr and exit code 2; everything else is a
bug and keeps its traceback. Messages name the problem and, where there is one, the fix.
"""


class UserError(Exception):
    """A mistake in what the user gave us (path, config key, dataset row, mode name)."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} ({fix})")
