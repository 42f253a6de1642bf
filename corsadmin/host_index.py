"""Which policies apply to a request's host: an index by exact host and by wildcard parent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class HostIndex(Generic[T]):
    """Which items (policies) apply to a request's host (canonical, port-less): those for
    every host, those naming it, and those with a wildcard on one of its parents (found by
    walking the host's labels). Memoised per host, a bounded number."""

    MEMO_SIZE = 1024

    __slots__ = ("_every", "_exact", "_wildcards", "_order", "_memo", "scoped")

    def __init__(self, items: Sequence[T], hosts_of: Callable[[T], Iterable[str]]) -> None:
        """``items`` in the order lookups must return them; ``hosts_of(item)`` its hosts."""
        self._order = {id(item): i for i, item in enumerate(items)}
        self._every = tuple(item for item in items if not hosts_of(item))
        self._exact: dict[str, list[T]] = {}
        self._wildcards: dict[str, list[T]] = {}
        for item in items:
            for host in hosts_of(item):
                if host.startswith("*."):
                    self._wildcards.setdefault(host[2:], []).append(item)
                else:
                    self._exact.setdefault(host, []).append(item)
        self.scoped = bool(self._exact or self._wildcards)
        self._memo: dict[str | None, tuple[T, ...]] = {}

    def get(self, host: str | None) -> tuple[T, ...]:
        if host is None or not self.scoped:
            return self._every
        found = self._memo.get(host)
        if found is None:
            found = self._lookup(host)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[host] = found
        return found

    def _lookup(self, host: str) -> tuple[T, ...]:
        matched: list[T] = list(self._exact.get(host, ()))
        wildcards = self._wildcards
        if wildcards:
            dot = host.find(".")
            while dot != -1:
                matched.extend(wildcards.get(host[dot + 1 :], ()))
                dot = host.find(".", dot + 1)
        if not matched:
            return self._every
        order = self._order
        unique = {id(item): item for item in (*self._every, *matched)}
        return tuple(sorted(unique.values(), key=lambda item: order[id(item)]))
