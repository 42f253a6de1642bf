"""The shared generation stamp and the change channel, in the cache other processes read.

With Django's ``RedisCache`` the refresher talks to Redis through a client of its own
with connect and read timeouts (``SERVICE_TIMEOUT``), so a Redis that hangs costs the
refresher a retry, never a request; changes are also announced on a pub/sub channel.
Another shared cache (e.g. Memcached) carries the stamp only, through Django's cache
API. A cache private to the process (local memory, dummy) is no bus at all: the
refresher then reads the database's own stamp.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from . import conf

logger = logging.getLogger("corsadmin")

STAMP_KEY = "corsadmin:v1:generation"
CHANNEL_KEY = "corsadmin:v1:changes"
STAMP_TIMEOUT = 300

# Set the stamp only forward (two writers may publish out of order), then announce it.
_PUBLISH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
    redis.call('EXPIRE', KEYS[1], ARGV[2])
end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return current
"""


class CacheBus:
    """The stamp in any shared Django cache (no channel)."""

    can_listen = False

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    def close(self) -> None:
        """Let go of its connections (before a fork: a child must not share a socket)."""
        close = getattr(self.cache, "close", None)
        if close is not None:
            close()

    def read(self) -> int | None:
        value = self.cache.get(STAMP_KEY)
        return None if value is None else int(value)

    def publish(self, generation: int) -> None:
        current = self.read()
        if current is None or current < generation:
            self.cache.set(STAMP_KEY, generation, STAMP_TIMEOUT)

    def forget(self) -> None:
        self.cache.delete(STAMP_KEY)

    def listen(
        self, on_generation: Callable[[int], None], stopped: Callable[[], bool], ready: Callable[[], None]
    ) -> None:
        raise NotImplementedError


class RedisBus(CacheBus):
    """The stamp and a pub/sub channel in the Redis of a ``RedisCache``, with timeouts."""

    can_listen = True

    def __init__(self, cache: RedisCache) -> None:
        import redis

        super().__init__(cache)
        timeout = float(conf.get("SERVICE_TIMEOUT"))
        self.key = cache.make_and_validate_key(STAMP_KEY)
        self.channel = cache.make_and_validate_key(CHANNEL_KEY)
        self.client = redis.Redis.from_url(
            cache._servers[0],  # type: ignore[attr-defined]  # RedisCache's LOCATION, as a list
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=max(1, int(conf.refresh_interval() * 3)),
        )
        self._publish = self.client.register_script(_PUBLISH)

    def close(self) -> None:
        self.client.close()

    def read(self) -> int | None:
        value = self.client.get(self.key)
        return None if value is None else int(value)

    def publish(self, generation: int) -> None:
        self._publish(keys=[self.key, self.channel], args=[generation, STAMP_TIMEOUT])

    def forget(self) -> None:
        self.client.delete(self.key)

    def listen(
        self, on_generation: Callable[[int], None], stopped: Callable[[], bool], ready: Callable[[], None]
    ) -> None:
        """Call ``on_generation`` for each announcement until ``stopped()``; raises on failure."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            pubsub.ping()
            ready()
            while not stopped():
                message = pubsub.get_message(timeout=conf.refresh_interval())
                if message and message.get("type") == "message":
                    on_generation(int(message["data"]))
        finally:
            pubsub.close()


def shared_bus() -> CacheBus | None:
    """The bus of the configured cache, or None when that cache is private to the process."""
    cache = caches[conf.cache_alias()]
    if isinstance(cache, (LocMemCache, DummyCache)):
        return None
    if isinstance(cache, RedisCache):
        return RedisBus(cache)
    return CacheBus(cache)


class PostgresChannel:
    """PostgreSQL's LISTEN/NOTIFY on a connection of its own (used when there is no Redis).

    Writers NOTIFY inside their transaction (``models.next_generation``), so the
    announcement arrives with the commit, from any process on any machine.
    """

    can_listen = True

    def __init__(self, alias: str = "default") -> None:
        from django.db import connections

        timeout = float(conf.get("SERVICE_TIMEOUT"))
        params = connections[alias].get_connection_params()
        params.setdefault("connect_timeout", max(1, round(timeout)))
        self.params = params
        self.timeout = timeout

    def listen(
        self, on_generation: Callable[[int], None], stopped: Callable[[], bool], ready: Callable[[], None]
    ) -> None:
        import psycopg

        from .models import NOTIFY_CHANNEL

        with psycopg.connect(**self.params, autocommit=True) as connection:
            connection.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
            ready()
            while not stopped():
                for notify in connection.notifies(timeout=conf.refresh_interval(), stop_after=1):
                    on_generation(int(notify.payload or 0))
                with cut_after(self.timeout, connection):
                    connection.execute("SELECT 1")  # a connection that died or hangs fails here


@contextlib.contextmanager
def cut_after(seconds: float, raw: Any) -> Iterator[Callable[[], None]]:
    """Shut a psycopg connection's socket down when the block makes no progress for ``seconds``.

    Progress is the block's start and each call of the function it is given (a statement
    starting or ending, a chunk of rows read). ``raw`` is the connection, or a function
    returning it (None while it is not open yet: its connect has its own timeout).

    A server that hangs never starts its own ``statement_timeout``, and TCP keepalives
    are answered by whatever holds the connection open: only the client's clock can
    tell. The blocked read then fails, and the caller reconnects."""
    last = [time.monotonic()]
    done = threading.Event()

    def watch() -> None:
        while True:
            left = last[0] + seconds - time.monotonic()
            if left <= 0:
                _shut_down(raw() if callable(raw) else raw)
                return
            if done.wait(left):
                return

    watcher = threading.Thread(target=watch, name="corsadmin-deadline", daemon=True)
    watcher.start()
    try:
        yield lambda: last.__setitem__(0, time.monotonic())
    finally:
        done.set()
        watcher.join(1)  # gone before the caller goes on (gunicorn forks right after a preload)


def _shut_down(raw: Any) -> None:
    try:
        with socket.socket(fileno=os.dup(raw.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001  (already closed: nothing to cut)
        pass


def database_channel(alias: str = "default") -> PostgresChannel | None:
    """NOTIFY reaches the database written to (``alias``: the routers' choice for writes)."""
    from django.db import connections

    return PostgresChannel(alias) if connections[alias].vendor == "postgresql" else None
