"""`python -m rlvr` and the `rlvr` console script.

The import of the command line itself sits inside the Ctrl-C guard, so an interrupt while
Python is still importing gives the same one line and exit code 130 as one during a command.
SIGTERM (`kill PID`, a scheduler's preemption) is answered the same way.
"""

import signal
import sys


def _terminate_as_interrupt(signum, frame) -> None:
    # The default action of SIGTERM ends this process at once and leaves a demo's pool
    # workers running; unwinding as Ctrl-C does stops them, keeps a training run resumable
    # and removes a demo's unfinished folder.
    raise KeyboardInterrupt


def run() -> int:
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        from rlvr.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
