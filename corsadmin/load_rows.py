"""Stored origin rows into a snapshot builder's tables: the full load's work on each chunk of
rows, and the ``Skipped`` record of a row that cannot be compiled."""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple, cast

from django.utils.translation import gettext as _

from . import entries
from .compiler import Scoped, TableKey, scope_bits
from .entries import EntryTable
from .hosting import shared_hosting_platform
from .models import AllowedOrigin

DENY = AllowedOrigin.DENY


class Skipped(NamedTuple):
    """A stored row the snapshot leaves out, and why (written around validation)."""

    kind: str  # "policy" or "origin"
    row_id: int
    name: str  # the policy's name, or the origin's text
    policy: str  # the policy's name (the entry's policy for an origin)
    reason: str  # "Type: message"

    @property
    def label(self) -> str:
        if self.kind == "policy":
            return f"policy {self.name}"
        return f"origin {self.name!r} of policy {self.policy}"

    def describe(self) -> str:
        """In the operator's language, for the check page (``label`` is the log's)."""
        if self.kind == "policy":
            return _("policy %(policy)s (id %(id)s): %(reason)s") % {
                "policy": self.name,
                "id": self.row_id,
                "reason": self.reason,
            }
        return _("origin %(origin)s of policy %(policy)s (id %(id)s): %(reason)s") % {
            "origin": repr(self.name),
            "policy": self.policy,
            "id": self.row_id,
            "reason": self.reason,
        }


def why(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text[:200]}"


def stored_platform(text: str) -> str | None:
    """The shared hosting platform of a stored wildcard's text (as ``hosting_wildcards`` found it)."""
    found = entries.entry_key(text)
    return shared_hosting_platform(found[1][1]) if found is not None and found[0] == "pattern" else None


def expiry(expires_at: datetime | None) -> float:
    return expires_at.timestamp() if expires_at else math.inf


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a full load runs (as it was after): the chunks'
    short-lived tuples would otherwise set off collections that walk everything loaded so far,
    a third of the load's time at a million rows. The load makes no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_chunk(
    chunk: tuple[tuple[Any, ...], ...],
    policies: dict[int, dict[str, Any]],
    tables: dict[TableKey, EntryTable],
    texts: dict[int, str],
    scoped: Scoped,
    bad: dict[int, Skipped],
) -> None:
    """Rows (``ORIGIN_FIELDS``) in order: the common ones (exact allow entries of the chunk's
    first policy, for CORS and not WebSockets, that never expire) by slices, the others one by
    one (``load_row``)."""
    ids, policy_ids, chunk_texts, expiries, csrf_flags, _enabled, effects, cors, websocket = zip(
        *chunk, strict=True
    )
    policy_id, size = policy_ids[0], len(ids)
    table = tables.get((policy_id, False)) if policy_id in policies else None
    try:
        found = list(map(entries.entry_key, chunk_texts)) if table is not None else None
    except Exception:  # noqa: BLE001  (load_row skips the row that raises, keeps the rest)
        found = None
    if table is None or found is None:
        for row in chunk:
            load_row(row, policies, tables, texts, scoped, bad)
        return
    uniform = (
        policy_ids.count(policy_id) == size
        and expiries.count(None) == size
        and DENY not in effects
        and all(cors)
        and not any(websocket)
    )
    odd = [
        i
        for i, key in enumerate(found)
        if key is None
        or key[0] != "exact"
        or not (
            uniform
            or (
                policy_ids[i] == policy_id
                and expiries[i] is None
                and effects[i] != DENY
                and cors[i]
                and not websocket[i]
            )
        )
    ]
    start = 0
    for stop in (*odd, size):
        if start < stop:
            exact = cast(list[tuple[str, str, str]], found[start:stop])  # none is None here
            table.add_exact(zip(map(itemgetter(1), exact), ids[start:stop], strict=True))
            texts.update(zip(ids[start:stop], chunk_texts[start:stop], strict=True))
            if any(csrf_flags[start:stop]):
                for i in range(start, stop):
                    if csrf_flags[i]:
                        scoped[ids[i]] = (
                            policy_id,
                            (ids[i], chunk_texts[i], math.inf),
                            scope_bits(True, False),
                        )
        if stop < size:
            load_row(chunk[stop], policies, tables, texts, scoped, bad)
        start = stop + 1


def load_row(
    row: tuple[Any, ...],
    policies: dict[int, dict[str, Any]],
    tables: dict[TableKey, EntryTable],
    texts: dict[int, str],
    scoped: Scoped,
    bad: dict[int, Skipped],
) -> None:
    entry_id, policy_id, text, expires_at, csrf_trusted, _enabled, effect, cors, websocket = row
    if policy_id not in policies:
        return
    deny = effect == DENY  # an exception refuses its origin in every scope
    bits = 0 if deny else scope_bits(csrf_trusted, websocket)
    name = policies[policy_id]["name"]
    try:
        expires = expiry(expires_at)
        if deny or cors:
            table = tables.get((policy_id, deny))
            if table is None:
                table = tables[policy_id, deny] = EntryTable()
            if table.add(entry_id, text, expires, name) is None:
                return
            texts[entry_id] = text
        elif bits and entries.entry_key(text) is None:
            return  # invalid (written around validation): honoured in no scope
    except Exception as exc:  # one bad row: skip it, keep the rest
        bad[entry_id] = Skipped("origin", entry_id, str(text), name, why(exc))
        return
    if bits:
        scoped[entry_id] = (policy_id, (entry_id, text, expires), bits)
