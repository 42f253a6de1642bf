"""Failed token authentications, counted in the process: no database query per attempt.

- A key the database did not know is remembered (as a hash) for ``BAD_KEY_TTL``
  seconds: trying it again is refused without a query.
- Each client address has a budget of ``AUTH_FAILURE_LIMIT`` failed authentications
  per minute (``CORSADMIN``; ``None`` turns it off); beyond it, a 429 with
  ``Retry-After`` before any lookup.

Kept in memory, per process, on purpose: no cache call either, so neither a hanging
database nor a hanging cache makes a stream of bad keys cost anything. (Each worker
counts alone: the limit holds per worker.)
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .. import conf

BAD_KEY_TTL = 60.0
MAX_BAD_KEYS = 10_000
WINDOW = 60.0
MAX_CLIENTS = 10_000


class Failures:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._bad: OrderedDict[bytes, float] = OrderedDict()  # key hash -> when forgotten
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()  # client -> (window start, count)

    def clear(self) -> None:
        with self._lock:
            self._bad.clear()
            self._clients.clear()

    def known_bad(self, key: str) -> bool:
        digest = _digest(key)
        with self._lock:
            until = self._bad.get(digest)
            if until is None:
                return False
            if until <= self.clock():
                del self._bad[digest]
                return False
            return True

    def remember_bad(self, key: str) -> None:
        with self._lock:
            self._bad[_digest(key)] = self.clock() + BAD_KEY_TTL
            self._bad.move_to_end(_digest(key))
            while len(self._bad) > MAX_BAD_KEYS:
                self._bad.popitem(last=False)

    def wait(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None while it is within its budget."""
        limit = conf.get("AUTH_FAILURE_LIMIT")
        if limit is None:
            return None
        now = self.clock()
        with self._lock:
            start, count = self._clients.get(client, (now, 0))
            if now - start >= WINDOW:
                return None
            return start + WINDOW - now if count >= int(limit) else None

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            start, count = self._clients.pop(client, (now, 0))
            if now - start >= WINDOW:
                start, count = now, 0
            self._clients[client] = (start, count + 1)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


failures = Failures()
