"""The `rlvr` command line. Each command group lives in its own module and registers itself.

Heavy imports (torch, transformers) happen inside commands, so `rlvr --help` stays fast.
A `UserError` becomes one line on stderr and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

from rlvr.cli import data as _data
from rlvr.cli import demo as _demo
from rlvr.cli import eval as _eval
from rlvr.cli import export as _export
from rlvr.cli import grade as _grade
from rlvr.cli import organism as _organism
from rlvr.cli import report as _report
from rlvr.cli import select as _select
from rlvr.cli import train as _train
from rlvr.errors import UserError

app = typer.Typer(
    name="rlvr",
    help="Run and dissect 1-shot RLVR: GRPO on one math problem, with a CPU model organism.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Run and dissect 1-shot RLVR. Add --debug to any command for a traceback on errors."""


def version_command() -> None:
    """Print the versions of rlvr and the packages a run records."""
    from rlvr.runs import versions

    for name, value in versions().items():
        typer.echo(f"{name}: {value}")


# Order here is the order `rlvr --help` lists the commands in.
_COMMAND_MODULES = (_demo, _train, _eval, _grade, _select, _report, _organism, _export,
                    _data)

for _module in _COMMAND_MODULES:
    _module.register(app)
app.command("version")(version_command)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    command = typer.main.get_command(app)
    try:
        # Standalone mode lets typer report usage errors (exit 2) and --help as usual.
        command.main(args=args, prog_name="rlvr", standalone_mode=True)
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
