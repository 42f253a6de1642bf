"""Rate limits of the REST API: DRF throttles whose rates and cache are read at call time.

The site turns them on (corsadmin's views throttle as the site's other DRF views do)::

    REST_FRAMEWORK = {"DEFAULT_THROTTLE_CLASSES": [
        "corsadmin.api.throttles.UserThrottle",
        "corsadmin.api.throttles.AnonThrottle",
    ]}

Two scopes, set like any DRF scope in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``:
``corsadmin_user`` (per authenticated user) and ``corsadmin_anon`` (per client
address, for the pages that need no login: the schema and docs). A scope the
settings do not name takes the default below; ``None`` turns it off.

Counting is one atomic ``incr`` of a counter per user and window (a fixed
window, e.g. the current minute) in corsadmin's cache
(``CORSADMIN["CACHE_ALIAS"]``), so every worker process counts together and
no request is lost to a race. (DRF's own throttles keep a list of timestamps,
read and written back whole at each request.) A cache that fails lets requests
through, with one log line per outage: an outage of the cache must not lock
operators out. After a failure the cache is left alone for ``BACKOFF`` seconds
(doubling while it keeps failing, up to ``MAX_BACKOFF``), then one request tries
it again: a cache that hangs costs one request its timeout, not every request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache import BaseCache, caches
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .. import conf

if TYPE_CHECKING:  # not at run time: rest_framework.views reads the throttle classes
    from rest_framework.views import APIView

logger = logging.getLogger("corsadmin.api")

USER_SCOPE = "corsadmin_user"
ANON_SCOPE = "corsadmin_anon"
DEFAULT_RATES: dict[str, str | None] = {
    # High: it stops a runaway script, not an operator or a deploy pipeline.
    USER_SCOPE: "10000/minute",
    ANON_SCOPE: "120/minute",
}
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KEY_PREFIX = "corsadmin:v1:throttle"
BACKOFF = 5.0
MAX_BACKOFF = 60.0


class Breaker:
    """Whether to call a service that failed: not until its back-off has passed, then once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failing = False
        self._backoff = BACKOFF
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def allows(self) -> bool:
        with self._lock:
            now = self.clock()
            if now < self._retry_at:
                return False
            if self.failing:  # this caller tries it; the others wait for its outcome
                self._retry_at = now + self._backoff
            return True

    def failed(self) -> bool:
        """Record a failure; True when it starts an outage."""
        with self._lock:
            started = not self.failing
            self._backoff = BACKOFF if started else min(self._backoff * 2, MAX_BACKOFF)
            self.failing = True
            self._retry_at = self.clock() + self._backoff
            return started

    def ok(self) -> None:
        with self._lock:
            self.failing, self._backoff, self._retry_at = False, BACKOFF, 0.0


def rate_for(scope: str) -> str | None:
    """The scope's rate, from the settings at call time (DRF's class attribute is read at import)."""
    rates = api_settings.DEFAULT_THROTTLE_RATES or {}
    rate = rates[scope] if scope in rates else DEFAULT_RATES[scope]
    return None if rate is None else str(rate)


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/minute' -> (100, 60), as DRF reads rates (s, m, h, d: the first letter counts)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def cache_key(scope: str, ident: object, period: int, window: int) -> str:
    # Hashed: an address comes from the request, and a key must stay short and plain.
    digest = hashlib.blake2b(str(ident).encode(), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}:{scope}:{digest}:{period}:{window}"


class CorsAdminThrottle(BaseThrottle):
    scope = USER_SCOPE
    breaker = Breaker()  # shared by the process: one outage, one log line, one back-off

    def ident(self, request: Request) -> Any:
        """Whom to count, or None to leave the request alone."""
        raise NotImplementedError

    @property
    def cache(self) -> BaseCache:
        return caches[conf.cache_alias()]

    def allow_request(self, request: Request, view: APIView) -> bool:
        rate = rate_for(self.scope)
        ident = self.ident(request) if rate is not None else None
        if rate is None or ident is None:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = cache_key(self.scope, ident, period, window)
        self.retry_after = (window + 1) * period - now
        breaker = CorsAdminThrottle.breaker
        if not breaker.allows():
            return True
        try:
            count = self.count(key, period)
        except Exception as exc:  # noqa: BLE001  (the cache is down: count nothing, refuse nothing)
            if breaker.failed():
                logger.warning("corsadmin: API throttling is off while the cache is unavailable (%s)", exc)
            return True
        breaker.ok()
        return count <= limit

    def count(self, key: str, period: int) -> int:
        cache = self.cache
        cache.add(key, 0, timeout=period + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            return 1

    def wait(self) -> float:
        return max(1, math.ceil(self.retry_after))


class UserThrottle(CorsAdminThrottle):
    """Authenticated requests, counted per user."""

    scope = USER_SCOPE

    def ident(self, request: Request) -> Any:
        user = request.user
        return user.pk if user and user.is_authenticated else None


class AnonThrottle(CorsAdminThrottle):
    """Anonymous requests, counted per client address.

    ``REMOTE_ADDR`` unless the site sets DRF's ``NUM_PROXIES`` (then the address
    that many proxies back in ``X-Forwarded-For``, as DRF reads it): without it
    DRF would believe any ``X-Forwarded-For`` a client sends, and a client could
    dodge the limit by changing it.
    """

    scope = ANON_SCOPE

    def ident(self, request: Request) -> Any:
        user = request.user
        if user and user.is_authenticated:
            return None
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR")
        return self.get_ident(request)
