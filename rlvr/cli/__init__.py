"""The `rlvr` command line. Each command group lives in its own module and registers itself.

Heavy imports (torch, transformers) happen inside commands, so `rlvr --help` stays fast.
A `UserError` becomes one line on stderr and exit code 2, Ctrl-C one line and exit code 130;
`--debug` shows the traceback.
"""

from __future__ import annotations

import signal
import sys

import typer

from rlvr.cli import data as _data
from rlvr.cli import decompose as _decompose
from rlvr.cli import demo as _demo
from rlvr.cli import eval as _eval
from rlvr.cli import export as _export
from rlvr.cli import grade as _grade
from rlvr.cli import organism as _organism
from rlvr.cli import report as _report
from rlvr.cli import responses as _responses
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
    from rlvr.rundir.write import versions

    for name, value in versions().items():
        typer.echo(f"{name}: {value}")


# Order here is the order `rlvr --help` lists the commands in.
_COMMAND_MODULES = (_demo, _train, _eval, _grade, _select, _report, _decompose, _organism,
                    _export, _responses, _data)

for _module in _COMMAND_MODULES:
    _module.register(app)
app.command("version")(version_command)


def interrupted(exc: BaseException | None = None) -> int:
    """Ctrl-C: one line (with what to do next, when the command said), exit code 130."""
    # A second Ctrl-C while Python shuts down would print a traceback: ignore it now.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    note = str(exc or "").strip()
    print("interrupted" + (f": {note}" if note else ""), file=sys.stderr, flush=True)
    return 130


def _plain_flags(command) -> None:
    """Help shows a flag without a value type: typer's `--quick <bool>` reads as if
    `--quick true` were valid, and it is not."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    original = command.get_help_option

    def get_help_option(ctx):
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        _plain_flags(sub)


def _interrupt_of(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt behind typer's Exit(130), for the note it may carry."""
    seen = exc
    while seen is not None and not isinstance(seen, KeyboardInterrupt):
        seen = seen.__cause__ or seen.__context__
    return seen


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    command = typer.main.get_command(app)
    _plain_flags(command)
    try:
        # Standalone mode lets typer report usage errors (exit 2) and --help as usual.
        command.main(args=args, prog_name="rlvr", standalone_mode=True)
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if debug:
            raise
        return interrupted(exc)
    except SystemExit as exc:
        code = exc.code
        if code == 130:  # typer's answer to a KeyboardInterrupt: silent exit 130
            return interrupted(_interrupt_of(exc))
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
