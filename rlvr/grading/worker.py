"""The worker process behind `rlvr.grading.deadline` (run as `python -m rlvr.grading.worker`).

It reads length-prefixed JSON requests on stdin and answers on a private copy of stdout
(fd 1 itself is pointed at stderr, so a stray print in a library cannot corrupt the protocol).
Requests: {"op": "equal", "pred", "gold"} -> {"equal": bool | None} (Math-Verify, no timeout
of its own: the parent owns the deadline); {"op": "grade", ...} -> {"grade": Grade fields};
{"op": "sleep", "seconds"} (a stand-in for a hang, used by the tests of the deadline).
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import time

from rlvr.grading.deadline import write_frame

_WARM_UP = [
    ("1", "1"), ("2\\sqrt{5}", "\\sqrt{20}"), ("x^2+1", "1+x^2"), ("3+4i", "4i+3"),
    ("\\frac{\\pi}{2}", "\\pi/2"), ("x \\le 0", "(-\\infty, 0]"), ("y=2x+1", "y=1+2x"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)"), ("\\{1,2\\}", "\\{2,1\\}"), ("indeed 5", "5"),
]


def _read_exact(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve() -> None:
    import json

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Math-Verify logs whole inputs on some errors and warns once that we disabled its
    # timeouts (on purpose): neither belongs in our logs.
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from rlvr.grading import compare
    from rlvr.grading.grader import grade

    compare.INLINE_SYMBOLIC = True
    for pred, gold in _WARM_UP:  # first calls into sympy pay lazy imports: not on the clock
        compare.symbolic_equal(pred, gold)
    write_frame(out, {"ready": True})
    stdin = sys.stdin.buffer
    while True:
        head = _read_exact(stdin, 4)
        if head is None:
            return
        body = _read_exact(stdin, struct.unpack(">I", head)[0])
        if body is None:
            return
        req = json.loads(body)
        if req.get("op") == "equal":
            try:
                equal = compare.symbolic_equal(req["pred"], req["gold"])
            except Exception as exc:  # sympy can raise anything; the answer is "not shown equal"
                write_frame(out, {"equal": None, "error": type(exc).__name__})
                continue
            write_frame(out, {"equal": equal})
        elif req.get("op") == "grade":
            g = grade(req["response"], req["gold"], finish_reason=req.get("finish_reason"),
                      timeout_s=req.get("timeout_s", 1.0))
            write_frame(out, {"grade": g.to_dict()})
        elif req.get("op") == "sleep":  # lets tests check that a deadline kills the worker
            time.sleep(float(req.get("seconds", 0)))
            write_frame(out, {"slept": True})
        else:
            write_frame(out, {"error": "unknown op"})


def main() -> None:
    try:
        serve()
    except (BrokenPipeError, KeyboardInterrupt):
        # The parent went away (closed our pipes, or was interrupted): nothing left to answer.
        os._exit(0)


if __name__ == "__main__":
    main()
