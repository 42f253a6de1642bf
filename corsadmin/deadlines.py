"""A deadline on every query corsadmin's own views make, authentication included.

A PostgreSQL that accepts connections and never answers (a failover, a stuck server, a
half-open socket) never starts its own ``statement_timeout``, and TCP keepalives are
answered by whatever holds the socket open: only the client's clock can tell. Within
``deadline()``, each query on a PostgreSQL connection whose answer takes longer than
the limit has its socket shut down (as ``bus.cut_after`` does for the refresher), so the
query fails, the view answers 503, and the worker is free again. A connection opened
within the block without a ``connect_timeout`` of the site's gets one for the limit.

One watchdog thread per process keeps the deadlines (no thread per query).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import OperationalError, connections

from . import conf
from .bus import _shut_down

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("corsadmin")

# The limit of each query made now (None: no deadline).
_limit: ContextVar[float | None] = ContextVar("corsadmin_query_limit", default=None)


def service_timeout() -> float:
    return float(conf.get("SERVICE_TIMEOUT"))


@contextmanager
def deadline(seconds: float | None = None) -> Iterator[None]:
    """Each query on a PostgreSQL connection within the block is cut after ``seconds``
    (``SERVICE_TIMEOUT`` by default); nested, the inner limit holds."""
    seconds = service_timeout() if seconds is None else seconds
    outer = _limit.get()
    token = _limit.set(seconds)
    try:
        with ExitStack() as stack:
            if outer is None:  # the wrappers once, however deep the nesting
                for alias in connections:
                    connection = connections[alias]
                    if connection.vendor == "postgresql":
                        stack.enter_context(_connect_timeout(connection, seconds))
                        stack.enter_context(connection.execute_wrapper(_cut_when_late))
            yield
    finally:
        _limit.reset(token)


@contextmanager
def _connect_timeout(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    """A ``connect_timeout`` for a connection opened within the block, unless the site set one."""
    options = connection.settings_dict.get("OPTIONS") or {}
    if "connect_timeout" in options:
        yield
        return
    settings_dict = connection.settings_dict
    # libpq's smallest timeout is 2 s.
    timeout = max(2, math.ceil(seconds))
    connection.settings_dict = {**settings_dict, "OPTIONS": {**options, "connect_timeout": timeout}}
    try:
        yield
    finally:
        connection.settings_dict = settings_dict


def check_health() -> None:
    """Within ``deadline()``: the check of a persistent connection before its reuse
    (``CONN_HEALTH_CHECKS``), which runs outside the query wrappers, run now under the
    deadline. Raises ``OperationalError`` when it went unanswered: the database hangs, and
    this request does not wait a second time for a new connection."""
    seconds = _limit.get()
    if seconds is None:
        return
    for alias in connections:
        # Any: django-stubs has no health_check_enabled / health_check_done
        connection: Any = connections[alias]
        raw = connection.connection if connection.vendor == "postgresql" else None
        if raw is None or not connection.health_check_enabled or connection.health_check_done:
            continue
        ticket = watchdog.arm(seconds, raw)
        try:
            connection.close_if_health_check_failed()
        finally:
            answered = watchdog.disarm(ticket)
        if not answered:
            raise OperationalError(f"the database did not answer within {seconds:.1f} s")


def _cut_when_late(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    seconds = _limit.get()
    raw = getattr(context["connection"], "connection", None)
    if seconds is None or raw is None:
        return execute(sql, params, many, context)
    ticket = watchdog.arm(seconds, raw)
    try:
        return execute(sql, params, many, context)
    finally:
        if watchdog.disarm(ticket) is False:
            logger.warning(
                "corsadmin: a query took longer than %.1f s: its connection was cut (the database hangs?)",
                seconds,
            )


class Watchdog:
    """Shuts down the socket of a connection whose deadline passes before it is disarmed."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._armed: dict[int, Any] = {}
        self._heap: list[tuple[float, int]] = []
        self._tickets = itertools.count()
        self._cut: set[int] = set()
        self._pid = 0

    def arm(self, seconds: float, raw: Any) -> int:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._armed, self._heap, self._cut = {}, [], set()
                threading.Thread(target=self._run, name="corsadmin-deadlines", daemon=True).start()
            ticket = next(self._tickets)
            self._armed[ticket] = raw
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket))
            self._lock.notify()
            return ticket

    def disarm(self, ticket: int) -> bool:
        """False when the deadline had passed and the connection was cut."""
        with self._lock:
            self._armed.pop(ticket, None)
            if ticket in self._cut:
                self._cut.discard(ticket)
                return False
            return True

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = []
                while self._heap and (self._heap[0][0] <= now or self._heap[0][1] not in self._armed):
                    _when, ticket = heapq.heappop(self._heap)
                    raw = self._armed.pop(ticket, None)
                    if raw is not None:
                        due.append(raw)
                        self._cut.add(ticket)
                if not due:
                    self._lock.wait(self._heap[0][0] - now if self._heap else None)
                    continue
            for raw in due:
                _shut_down(raw)


watchdog = Watchdog()
