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
operators out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.core.cache import BaseCache, caches
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .. import conf

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


def rate_for(scope: str) -> str | None:
    """The scope's rate, from the settings at call time (DRF's class attribute is read at import)."""
    rates = api_settings.DEFAULT_THROTTLE_RATES or {}
    rate = rates[scope] if scope in rates else DEFAULT_RATES[scope]
    return None if rate is None else str(rate)


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/minute' -> (100, 60), as DRF reads rates (s, m, h, d: the first letter counts)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def cache_key(scope: str, ident: Any, period: int, window: int) -> str:
    # Hashed: an address comes from the request, and a key must stay short and plain.
    digest = hashlib.blake2b(str(ident).encode(), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}:{scope}:{digest}:{period}:{window}"


class CorsAdminThrottle(BaseThrottle):
    scope = USER_SCOPE
    cache_failing = False  # shared by the process, to log an outage once

    def ident(self, request: Request) -> Any:
        """Whom to count, or None to leave the request alone."""
        raise NotImplementedError

    @property
    def cache(self) -> BaseCache:
        return caches[conf.cache_alias()]

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = rate_for(self.scope)
        ident = self.ident(request) if rate is not None else None
        if rate is None or ident is None:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = cache_key(self.scope, ident, period, window)
        self.retry_after = (window + 1) * period - now
        try:
            count = self.count(key, period)
        except Exception as exc:  # noqa: BLE001  (the cache is down: count nothing, refuse nothing)
            if not CorsAdminThrottle.cache_failing:
                CorsAdminThrottle.cache_failing = True
                logger.warning("corsadmin: API throttling is off while the cache is unavailable (%s)", exc)
            return True
        CorsAdminThrottle.cache_failing = False
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
