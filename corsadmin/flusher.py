"""A daemon thread per process that writes what the request path counted in memory.

Shared by the refused-origin telemetry and the usage counts: the request path only
calls ``ensure_started()`` (one pid comparison), and the thread calls ``flush`` every
``interval()`` seconds while ``pending()`` says there is something to write. A failure
is logged once until the next success; the thread closes its database connection
after each round. After a fork the child starts its own thread on its first count.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

logger = logging.getLogger("corsadmin")


class Flusher:
    def __init__(
        self,
        name: str,
        flush: Callable[[], object],
        *,
        interval: Callable[[], float],
        pending: Callable[[], bool],
        what: str,
        event: str,
    ) -> None:
        self.name = name
        self.flush = flush
        self.interval = interval
        self.pending = pending
        self.what = what  # for the log line: "could not write <what>"
        self.event = event
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        failing = False
        while True:
            time.sleep(float(self.interval()))
            if not self.pending():
                continue
            try:
                close_old_connections()
                self.flush()
                failing = False
            except Exception as exc:  # noqa: BLE001  (logged; the thread lives on)
                if not failing:
                    logger.error(
                        "corsadmin: could not write %s (%s)", self.what, exc, extra={"event": self.event}
                    )
                failing = True
            finally:
                connection.close()

    def forked(self) -> None:
        """In a child process: a fresh lock (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()
