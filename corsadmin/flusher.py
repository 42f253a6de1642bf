"""One daemon thread per process that writes what the request path counted in memory.

Usage counts, refused-origin telemetry and the Prometheus metrics each register a
``Job`` with the process's one ``flusher``. The request path calls
``flusher.ensure_started(job)`` on a count (callers test ``job.pid != os.getpid()``
first: one comparison); from then on the thread runs ``job.flush`` every
``job.interval()`` seconds while ``job.pending()`` says there is something to write.
A failure is logged once per job until its next success; the thread closes its
database connection after each round.

Fork: the child gets no thread (threads do not survive a fork) and starts its own on
its first count. Counts the parent had not written yet stay the parent's: each job's
``forked`` drops them in the child, so they are written once, by the parent (its
thread or its exit), never once per child.

Exit: ``flush_at_exit`` runs at interpreter exit (``atexit``) and from gunicorn's
``worker_exit`` hook (``project/gunicorn_conf.py``), and writes what every job of this
process's thread still holds, so a graceful restart loses no counts. A job in
``"manual"`` mode (never started here) is left to whoever calls its flush.
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
    forked: Callable[[], None] = lambda: None  # in a child: drop what the parent counted
    pid: int | None = None  # the process whose thread runs this job
    due: float = 0.0
    failing: bool = field(default=False)


class Flusher:
    def __init__(self, name: str = "corsadmin-flusher") -> None:
        self.name = name
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

    def _mine(self) -> list[Job]:
        pid = os.getpid()
        return [job for job in self.jobs if job.pid == pid]

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            jobs = self._mine()
            due = [job for job in jobs if job.due <= now]
            for job in due:
                self._flush(job)
                job.due = time.monotonic() + float(job.interval())
            if due:
                connection.close()
            nearest = min((job.due for job in jobs), default=now + 1.0)
            self._wake.wait(max(0.01, nearest - time.monotonic()))
            self._wake.clear()

    def _flush(self, job: Job) -> None:
        try:
            if not job.pending():
                return
            close_old_connections()
            job.flush()
            job.failing = False
        except Exception as exc:  # noqa: BLE001  (logged; the thread lives on)
            if not job.failing:
                logger.error("corsadmin: could not write %s (%s)", job.what, exc, extra={"event": job.event})
            job.failing = True

    def flush_at_exit(self) -> None:
        """Write what this process's jobs still hold (at exit: a graceful restart keeps its counts)."""
        jobs = self._mine()
        for job in jobs:
            self._flush(job)
        if jobs:
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110  (exiting: nothing left to tell)
                pass

    def _forked(self) -> None:
        """In a child process: no thread yet, fresh locks, and the parent's counts are the parent's."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = None
        for job in self.jobs:
            job.pid = None
            job.failing = False
            try:
                job.forked()
            except Exception:  # noqa: BLE001  (a child must start whatever a job's reset does)
                logger.exception("corsadmin: resetting %s after a fork failed", job.what)


flusher = Flusher()
atexit.register(flusher.flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=flusher._forked)
