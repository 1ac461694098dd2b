"""Time bounds without signals: work that may hang runs in a worker process we can kill.

Math-Verify bounds its own work with `signal.alarm`, which only works on the main thread. We
call it with its timeouts disabled, and only inside a worker process (`rlvr.grading.worker`,
started with `python -m`, so no `__main__` guard is needed and nothing is pickled). The parent
talks to it over pipes (length-prefixed JSON), waits with `select` (works from any thread) and,
when a call overruns its deadline, kills the process and starts a fresh one.

A small persistent pool (`symbolic_pool()`, RLVR_GRADER_WORKERS processes, default 2) serves
the hard path of `grade()`: two, so that after a timeout kills one, the next call finds the
other ready instead of waiting for the replacement to start (and threads get two lanes).
`grade_many` runs its own pool of full graders.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTUP_TIMEOUT_S = 120.0  # importing sympy on a busy 2-core machine can take seconds


class DeadlineExceeded(Exception):
    """The worker did not answer in time; it has been killed."""


class NotReady(DeadlineExceeded):
    """The worker was still starting when the deadline passed; it is kept, not killed."""


class WorkerFailed(Exception):
    """The worker died or answered garbage (it has been discarded)."""


def write_frame(stream, payload: dict) -> None:
    data = json.dumps(payload, ensure_ascii=True).encode("ascii")
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


class Worker:
    """One child process running `rlvr.grading.worker`, used by one caller at a time."""

    def __init__(self) -> None:
        # The child must import this same rlvr, even when the parent found it via sys.path.
        root = str(Path(__file__).resolve().parent.parent.parent)
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0", PYTHONPATH=path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rlvr.grading.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own process group: a Ctrl-C at the terminal interrupts the command, which
            # then closes the pipe; the worker never sees SIGINT (no traceback from it).
            process_group=0,
        )
        self._buf = b""
        self.ready = False

    def _read_frame(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buf) >= 4:
                (size,) = struct.unpack(">I", self._buf[:4])
                if len(self._buf) >= 4 + size:
                    data, self._buf = self._buf[4 : 4 + size], self._buf[4 + size :]
                    return json.loads(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise DeadlineExceeded
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerFailed("worker exited")
            self._buf += chunk

    def wait_ready(self, deadline: float | None = None) -> None:
        if not self.ready:
            try:
                msg = self._read_frame(deadline or time.monotonic() + STARTUP_TIMEOUT_S)
            except DeadlineExceeded:
                if deadline is None:
                    raise WorkerFailed("worker did not start in time") from None
                raise NotReady from None
            if not msg.get("ready"):
                raise WorkerFailed("worker did not start")
            self.ready = True

    def poll_ready(self) -> bool:
        """Whether the worker has reported ready, without waiting."""
        if not self.ready:
            try:
                select_ready, _, _ = select.select([self.proc.stdout.fileno()], [], [], 0)
                if select_ready:
                    self.wait_ready()
            except (DeadlineExceeded, WorkerFailed, OSError, ValueError):
                return False
        return self.ready

    def call(self, request: dict, timeout_s: float, *, startup_counts: bool = False) -> dict:
        """Send one request. The deadline starts once the worker is ready, unless
        `startup_counts`: then a worker still starting must be ready within it (`NotReady`)."""
        deadline = time.monotonic() + timeout_s
        if startup_counts:
            self.wait_ready(deadline)
        else:
            self.wait_ready()
            deadline = time.monotonic() + timeout_s
        try:
            write_frame(self.proc.stdin, request)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerFailed("worker pipe closed") from exc
        return self._read_frame(deadline)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """A fixed number of workers shared by threads; a killed worker is replaced at once."""

    def __init__(self, size: int, *, bound_startup: bool = True) -> None:
        self.size = max(1, size)
        # grade() needs every call inside its deadline once the pool has warmed; a batch
        # would rather wait for a replacement than fail items it never tried.
        self.bound_startup = bound_startup
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._closed = False
        self.ever_ready = False  # some worker of this pool has finished starting

    def _checkout(self) -> Worker:
        with self._cond:
            while not self._idle and len(self._all) >= self.size:
                self._cond.wait()
            if self._idle:
                # Prefer a ready worker: after a timeout the replacement is still starting,
                # and the next call should not wait for it while another worker is ready.
                ready = [w for w in self._idle if w.poll_ready()]
                worker = ready[-1] if ready else self._idle[-1]
                self._idle.remove(worker)
                return worker
            worker = Worker()
            self._all.append(worker)
            return worker

    def _checkin(self, worker: Worker, alive: bool) -> None:
        with self._cond:
            if alive and not self._closed:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
                worker.kill()
                if not self._closed:  # start the replacement now so it warms while we return
                    fresh = Worker()
                    self._all.append(fresh)
                    self._idle.append(fresh)
            self._cond.notify()

    def call(self, request: dict, timeout_s: float) -> dict:
        """One request under a deadline. Only the pool's very first start-up is waited for
        outside the deadline (a cold start must not turn into a timeout); after that, a call
        that finds every worker still starting (a burst of timeouts) times out within its
        deadline and leaves the starting worker alone."""
        worker = self._checkout()
        alive = False
        try:
            bounded = self.bound_startup and self.ever_ready
            reply = worker.call(request, timeout_s, startup_counts=bounded)
            alive = True
            return reply
        except NotReady:
            alive = True
            raise
        finally:
            self.ever_ready = self.ever_ready or worker.ready
            self._checkin(worker, alive)

    def prestart(self) -> None:
        """Start the workers without waiting for them (cheap when already started)."""
        if len(self._all) >= self.size or self._closed:
            return
        with self._cond:
            while len(self._all) < self.size:
                worker = Worker()
                self._all.append(worker)
                self._idle.append(worker)
            self._cond.notify_all()

    def warm(self) -> None:
        """Start the workers and wait until they have imported everything."""
        workers = [self._checkout() for _ in range(self.size)]
        for w in workers:
            try:
                w.wait_ready()
            finally:
                self.ever_ready = self.ever_ready or w.ready
                self._checkin(w, w.ready)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for worker in self._all:
                worker.kill()
            self._all.clear()
            self._idle.clear()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def symbolic_pool() -> WorkerPool:
    """The process-wide pool for the symbolic hard path (re-created after a fork)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = WorkerPool(int(os.environ.get("RLVR_GRADER_WORKERS", "2")))
        return _POOL


@atexit.register
def _shutdown() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()
