"""The background writers of each process: a thread that runs jobs at their intervals, and
what becomes of those jobs when the process forks or exits.

A ``Job`` is something the request path (or the refresher) notes in memory and a thread
writes later. The request path calls ``ensure_started(job)`` on a count (callers test
``job.pid != os.getpid()`` first: one comparison); from then on the thread runs
``job.flush`` every ``job.interval()`` seconds while ``job.pending()`` says there is
something to write, and at once after ``wake(job)``. A failure is logged once per job
until its next success.

Two flushers, each one daemon thread per process, started on first use:

- ``flusher`` (``corsadmin-flusher``): the counts, usage, refused-origin telemetry and the
  Prometheus metrics. It closes its database connection after each round.
- ``heartbeats`` (``corsadmin-heartbeat``): the process's heartbeat (``corsadmin.heartbeat``).
  Apart from the counts because it says the process is alive: a count write stuck on a
  database that hangs must not make a serving process drop out of ``cors status``. It keeps
  its connection between writes (one every few seconds).

Fork (``os.register_at_fork``, here only): the child gets no thread (threads do not survive
a fork) and starts its own on its first use. What the parent had noted stays the parent's:
each job's ``forked`` drops it in the child, so counts are written once, by the parent (its
thread or its exit), never once per child.

Exit (``at_exit``: at interpreter exit, ``atexit``, and from gunicorn's ``worker_exit`` hook,
``project/gunicorn_conf.py``): every job this process's thread runs is flushed, so a graceful
restart loses no counts; a job with an ``exit`` of its own runs that instead, in any process
(the heartbeat leaves the list). A job in ``"manual"`` mode (never started here) is left to
whoever calls its flush.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections, connection

logger = logging.getLogger("corsadmin")


@dataclass(eq=False)
class Job:
    name: str
    flush: Callable[[], object]
    interval: Callable[[], float]
    pending: Callable[[], bool]
    what: str  # for the log line: "could not write <what>"
    event: str
    forked: Callable[[], None] = lambda: None  # in a child: drop what the parent noted
    exit: Callable[[], None] | None = None  # at exit instead of a last flush (it tells its own process)
    pid: int | None = None  # the process whose thread runs this job
    due: float = 0.0
    woken: bool = False  # wake(): flush at the thread's next round, whatever the interval
    failing: bool = field(default=False)


class Flusher:
    def __init__(self, name: str = "corsadmin-flusher", *, closes_connections: bool = True) -> None:
        self.name = name
        self.closes_connections = closes_connections
        self.jobs: list[Job] = []
        self._pid: int | None = None  # the process whose thread is running
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def register(self, job: Job) -> Job:
        self.jobs.append(job)
        return job

    def ensure_started(self, job: Job) -> None:
        """``job`` joins this process's thread (started now if it is not running)."""
        pid = os.getpid()
        if job.pid == pid:
            return
        with self._lock:
            if job.pid == pid:
                return
            job.due = time.monotonic() + float(job.interval())
            job.pid = pid
            start = self._pid != pid
            self._pid = pid
        if start:
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
        else:
            self._wake.set()  # a job with a shorter interval than the thread's current sleep

    def wake(self, job: Job) -> None:
        """Flush ``job`` now rather than at its next interval (a wake during its flush: once more)."""
        job.woken = True
        self._wake.set()

    def _mine(self) -> list[Job]:
        pid = os.getpid()
        return [job for job in self.jobs if job.pid == pid]

    def _run(self) -> None:
        while True:
            self._wake.clear()  # before the round: a wake during it ends the next wait at once
            now = time.monotonic()
            jobs = self._mine()
            due = [job for job in jobs if job.woken or job.due <= now]
            for job in due:
                job.woken = False
                self._flush(job)
                job.due = time.monotonic() + float(job.interval())
            if due and self.closes_connections:
                connection.close()
            nearest = min((job.due for job in jobs), default=now + 1.0)
            self._wake.wait(max(0.01, nearest - time.monotonic()))

    def _flush(self, job: Job) -> None:
        try:
            if not job.pending():
                return
            if self.closes_connections:
                close_old_connections()
            job.flush()
            job.failing = False
        except Exception as exc:  # noqa: BLE001  (logged; the thread lives on)
            if not job.failing:
                logger.error("corsadmin: could not write %s (%s)", job.what, exc, extra={"event": job.event})
            job.failing = True

    def flush_at_exit(self) -> None:
        """Write what this process's jobs still hold; run the jobs' own ``exit``."""
        flushed = False
        for job in self.jobs:
            if job.exit is not None:
                try:
                    job.exit()
                except Exception:  # noqa: BLE001  (exiting: the other jobs still write)
                    logger.exception("corsadmin: the exit of %s failed", job.what)
            elif job.pid == os.getpid():
                self._flush(job)
                flushed = True
        if flushed and self.closes_connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110  (exiting: nothing left to tell)
                pass

    def _forked(self) -> None:
        """In a child process: no thread yet, fresh locks, and the parent's notes are the parent's."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = None
        for job in self.jobs:
            job.pid = None
            job.woken = False
            job.failing = False
            try:
                job.forked()
            except Exception:  # noqa: BLE001  (a child must start whatever a job's reset does)
                logger.exception("corsadmin: resetting %s after a fork failed", job.what)


flusher = Flusher()
heartbeats = Flusher("corsadmin-heartbeat", closes_connections=False)
FLUSHERS = (flusher, heartbeats)


def at_exit() -> None:
    """The process is ending (``atexit``, gunicorn's ``worker_exit``): each flusher's last round."""
    for each in FLUSHERS:
        each.flush_at_exit()


def _forked() -> None:
    for each in FLUSHERS:
        each._forked()


atexit.register(at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
