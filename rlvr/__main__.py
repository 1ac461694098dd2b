"""`python -m rlvr` and the `rlvr` console script.

The import of the command line itself sits inside the Ctrl-C guard, so an interrupt while
Python is still importing gives the same one line and exit code 130 as one during a command.
"""

import sys


def run() -> int:
    try:
        from rlvr.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
