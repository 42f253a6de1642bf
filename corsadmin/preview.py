"""Previews: the traffic a configuration change would flip, from the change not made.

``preview(write)`` runs the real write (the same validation, the same code, its history
row) in a transaction that is always rolled back: nothing is committed, so no generation
moves, nothing is announced (the announcements wait for a commit: ``transaction.on_commit``,
PostgreSQL's ``NOTIFY``) and no history is kept. Within it, the traffic seen in the last
``WINDOW_DAYS`` days (``corsadmin.traffic``) is decided twice, by a snapshot built from the
rows before the write and by one built after it, each with ``loader.SnapshotBuilder`` and
``Snapshot.decide``, the middleware's own decision. A snapshot reads only the entries that
could match an origin of that traffic (its exact text, its port wildcard and the
wildcards of its parent domains): a preview on a site with a million entries reads the few
that matter. A database sequence may still move (ids are not reused): nothing else does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction

from . import traffic, usage, writes
from .loader import ORIGIN_FIELDS, SnapshotBuilder
from .origins import split_request_origin
from .protected import guard
from .snapshot import Decision, Snapshot

WINDOW_DAYS = 7  # the traffic a preview looks at
CONFIRM_HOURS = 24  # a write that would refuse traffic this recent asks first
CHUNK = 500  # entry texts per IN (...)


def entry_texts(origin: str) -> list[str]:
    """The stored entries that could match a request's ``origin``: itself, its port wildcard,
    and the wildcards (any port, or its own) of each of its parent domains."""
    texts = [origin]
    parts = split_request_origin(origin)
    if parts is None:
        return texts
    scheme, host, port = parts
    texts.append(f"{scheme}://{host}:*")
    dot = host.find(".")
    while dot != -1:
        base = host[dot + 1 :]
        texts.append(f"{scheme}://*.{base}:*")
        texts.append(f"{scheme}://*.{base}:{port}" if port else f"{scheme}://*.{base}")
        dot = host.find(".", dot + 1)
    return texts


def _snapshot(texts: Sequence[str], using: str) -> Snapshot:
    def only(live: Any) -> Iterator[tuple[Any, ...]]:
        for start in range(0, len(texts), CHUNK):
            yield from live.filter(origin__in=texts[start : start + CHUNK]).values_list(*ORIGIN_FIELDS)

    builder = SnapshotBuilder(using)
    builder.only = only
    return builder.load()


def _decide(snapshot: Snapshot, seen: traffic.Seen) -> Decision:
    decision = snapshot.decide(seen.origin, seen.path, "GET", False, False, seen.host or None)
    return guard(decision, seen.path) if decision.allowed else decision


def _who(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "policy": decision.policy,
        "entry": decision.matched,
        "denied_by": decision.denied_by,
        "denied_policy": decision.denied_policy,
    }


@dataclass(frozen=True)
class Flip:
    """Traffic whose decision the change would turn around."""

    seen: traffic.Seen
    before: Decision
    after: Decision

    @property
    def last_seen(self) -> Any:
        return self.seen.last_seen

    def as_dict(self) -> dict[str, Any]:
        seen = self.seen
        return {
            "origin": seen.origin,
            "path_prefix": seen.path_prefix,
            "host": seen.host,
            "requests": seen.requests,
            "last_seen": seen.last_seen.isoformat().replace("+00:00", "Z"),
            "before": _who(self.before),
            "after": _who(self.after),
        }


@dataclass(frozen=True)
class Preview:
    would_allow: list[Flip]
    would_refuse: list[Flip]

    def as_dict(self) -> dict[str, Any]:
        return {
            "would_allow": [flip.as_dict() for flip in self.would_allow],
            "would_refuse": [flip.as_dict() for flip in self.would_refuse],
        }

    def recent_refusals(self, hours: float = CONFIRM_HOURS) -> list[Flip]:
        """The traffic it would refuse that was seen within the last ``hours``."""
        since = usage.now() - timedelta(hours=hours)
        return [flip for flip in self.would_refuse if flip.last_seen >= since]


def origins(flips: list[Flip]) -> int:
    """How many distinct origins some flips are from (a key is an origin, a prefix and a host)."""
    return len({flip.seen.origin for flip in flips})


class _RolledBack(Exception):
    """Leaves the preview's transaction, undoing the write."""


def preview(write: Callable[[], object], using: str | None = None) -> Preview:
    """What ``write()`` would flip; it runs, and is rolled back (its errors propagate)."""
    using = using or writes.alias()
    seen = traffic.recent(WINDOW_DAYS, using)
    texts = sorted({text for key in seen for text in entry_texts(key.origin)})
    try:
        with transaction.atomic(using=using):
            before = _snapshot(texts, using) if seen else None
            write()
            after = _snapshot(texts, using) if seen else None
            raise _RolledBack
    except _RolledBack:
        pass
    allow: list[Flip] = []
    refuse: list[Flip] = []
    if before is None or after is None:
        return Preview(allow, refuse)
    for key in seen:
        then, now = _decide(before, key), _decide(after, key)
        if then.allowed != now.allowed:
            (allow if now.allowed else refuse).append(Flip(key, then, now))
    return Preview(allow, refuse)


def may_refuse_recent() -> bool:
    """Whether a write could refuse traffic seen in the last ``CONFIRM_HOURS`` (whether it is
    worth previewing before asking): some traffic was seen then."""
    return traffic.any_since(CONFIRM_HOURS, writes.alias())


def describe(flip: Flip) -> str:
    """One line for the command line (English, as the ``cors`` command's output)."""
    seen, before, after = flip.seen, flip.before, flip.after
    where = f"{seen.host}{seen.path_prefix}" if seen.host else seen.path_prefix
    was = f"allowed by {before.policy} ({before.matched})" if before.allowed else _refused(before)
    will = f"allowed by {after.policy} ({after.matched})" if after.allowed else _refused(after)
    return (
        f"{seen.origin} on {where}: {seen.requests} requests, last {seen.last_seen:%Y-%m-%d %H:%M} UTC; "
        f"{was} -> {will}"
    )


def _refused(decision: Decision) -> str:
    if decision.denied_by:
        return f"refused by {decision.denied_by} in {decision.denied_policy}"
    return "refused"
