"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a `UserError` into a single line on stderr and exit code 2; everything else is a
bug and keeps its traceback. Messages name the problem and, where there is one, the fix.
`warn` and `notice` are the one-line messages of a command that goes on (a value capped, a
default chosen), on stderr so that they never mix with a command's output.
"""

__all__ = ["UserError", "notice", "warn"]


class UserError(Exception):
    """A mistake in what the user gave us (path, config key, dataset row, mode name)."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} ({fix})")


def warn(message: str) -> None:
    """A one-line warning on stderr: something was adjusted, the run goes on (say what and why)."""
    import sys

    print(f"warning: {message}", file=sys.stderr)


def notice(message: str) -> None:
    """A one-line notice on stderr: a default was chosen for the user (say which and why)."""
    import sys

    print(f"notice: {message}", file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, carrying what the user can do next (e.g. how to resume); the CLI exits 130."""
