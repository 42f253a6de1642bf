"""How long a long API request (an import, an export) may still work before it must answer.

A server gives each request limited time. gunicorn's sync worker cannot tell its master
it is alive while it serves a request: ``--timeout`` seconds after its last sign of life
(taken just before the request) the master kills it, and the client gets a bare error
page or a dropped connection, with nothing done and nothing said. So the long work
checks the clock as it goes (``check()``) and gives up in time by raising ``OutOfTime``:
its transaction rolls back (nothing half-done) and the API answers 503 in JSON, saying
what to do instead (``corsadmin.api.exceptions``).

The time left is the least of:

- ``CORSADMIN["REQUEST_TIMEOUT"]`` seconds from the request's start (None, the default:
  no limit of its own);
- the server's own limit, when the server said it: under gunicorn, call
  ``gunicorn_worker(worker)`` from its ``post_worker_init`` hook (``project/gunicorn_conf.py``
  does). Only the sync worker kills a busy worker; the threaded and asynchronous ones keep
  signalling while a request runs, so for them there is nothing to say.

each less a margin for the rollback and the answer (a tenth of the limit, at least one
second). The command line sets no limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from . import conf

# When this request must stop working (time.monotonic()); None: no limit.
_deadline: ContextVar[float | None] = ContextVar("corsadmin_budget_deadline", default=None)
# The server's limit for this process: (pid, () -> (monotonic time it kills the worker, its timeout)).
_server: tuple[int, Callable[[], tuple[float, float]]] | None = None


class OutOfTime(Exception):
    """The work would outlast the time the server gives the request: stopped, rolled back."""

    code = "out_of_time"


def now() -> float:
    """The clock of deadlines: ``time.monotonic()``, as gunicorn's (tests replace it)."""
    return time.monotonic()


def margin(limit: float) -> float:
    return max(1.0, limit / 10)


def gunicorn_worker(worker: Any) -> None:
    """Tell corsadmin when gunicorn kills this worker (``post_worker_init(worker)``)."""
    global _server
    classes = {(cls.__module__, cls.__name__) for cls in type(worker).__mro__}
    sync = ("gunicorn.workers.sync", "SyncWorker") in classes
    timeout = float(worker.cfg.timeout or 0)
    if not sync or timeout <= 0:
        _server = None
        return

    def ends() -> tuple[float, float]:
        # gunicorn stamps the worker's file with time.monotonic() at each sign of life.
        return worker.tmp.last_update() + timeout, timeout

    _server = (os.getpid(), ends)


def request_timeout() -> float | None:
    value = conf.get("REQUEST_TIMEOUT")
    return None if value is None else float(value)


def deadline_for(started: float) -> float | None:
    """When a request that started at ``started`` (``now()``) must stop working."""
    ends = []
    limit = request_timeout()
    if limit is not None:
        ends.append(started + limit - margin(limit))
    server = _server
    if server is not None and server[0] == os.getpid():
        killed_at, timeout = server[1]()
        ends.append(killed_at - margin(timeout))
    return min(ends) if ends else None


@contextmanager
def limited(deadline: float | None) -> Iterator[None]:
    """``check()`` within the block raises ``OutOfTime`` once ``deadline`` has passed."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left (None: no limit)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - now()


def check(message: Callable[[], str]) -> None:
    """Raise ``OutOfTime(message())`` when this request's time is up."""
    deadline = _deadline.get()
    if deadline is not None and now() >= deadline:
        raise OutOfTime(message())
