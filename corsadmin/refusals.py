"""Refused requests counted once on the request path, for telemetry and usage alike.

A refused cross-origin request (or a report-only policy's would-be refusal) is one
increment of one dictionary of this process, keyed by what both consumers need: the
origin, the path, the policy usage counts the refusal for (``None``: usage does not count
it) and the report-only policy telemetry files it under (``""`` for an ordinary refusal;
``None``: telemetry does not record it), in the dictionary of the usage clock's hour.
One lock, one clock read, one dictionary update; no path prefix, no second recorder.

``split()`` hands what was counted to its two consumers, in the order it was counted:
telemetry's share goes into ``telemetry.recorder`` (where its ``TELEMETRY_MAX_ORIGINS``
cap applies, as when each refusal was recorded there directly), usage's share waits here
for ``usage.flush`` (``take_usage``), which adds it to the hourly per-policy counts it
writes. Each consumer splits before it reads or writes (its flush, its ``pending``)
through the hooks this module sets on import (``telemetry.upstream``,
``usage.upstream``: neither imports this module), so what telemetry and usage record and
write is what they recorded when each refusal went to both (one difference: a key's first
and last seen merge as the earliest and the latest, which is the same unless the clock is
set back). At most ``TELEMETRY_MAX_ORIGINS`` keys wait here per hour: the request that
would add one more splits first. After a fork the child drops what the parent counted (the parent writes it).
Nothing here raises into a request. The middleware imports this module, which sets the
hooks: a process that never imported it has nothing counted here.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import telemetry, traffic, usage
from .flusher import flusher

HOUR = 3600

# (origin, path, usage's policy or None, telemetry's report-only policy, "" or None, the Host
# header for ``corsadmin.traffic`` or None)
Key = tuple[str, str, str | None, str | None, str | None]
# usage hour -> {key: [count, first seen, last seen] (telemetry's clock)}
Hours = dict[int, dict[Key, list[Any]]]

_lock = threading.Lock()  # guards the counts: a count, or the split's swap
_split_lock = threading.Lock()  # one split at a time: shares are handed over in order
_hours: Hours = {}
_current: dict[Key, list[Any]] = {}  # the current hour's dictionary (in _hours)
_hour = 0
_hour_end = 0.0  # the current hour's bounds, by the usage clock (0: none yet)
# usage hour -> {policy: refused requests}, split off and not yet taken by usage's flush
_usage_share: dict[int, dict[str, int]] = {}


def count(origin: str, path: str, policy: str | None, report: str | None, host: str | None = None) -> None:
    """One refused request: counted by usage for ``policy`` (unless None), by telemetry
    under ``report`` ("" for an ordinary refusal; unless None), and as traffic from
    ``origin`` at ``host`` (an ordinary refusal, when traffic is counted)."""
    at = usage.clock()
    clock = telemetry.clock
    now = at if clock is usage.clock else clock()
    key = (origin, path, policy, report, host)
    lock = _lock
    lock.acquire()
    try:
        if at >= _hour_end or at < _hour_end - HOUR:
            _roll(at)
        counts = _current
        entry = counts.get(key)
        if entry is not None:
            entry[0] += 1
            entry[2] = now
            return
        if len(counts) >= telemetry._max_origins:
            lock.release()
            try:
                split()
            finally:
                lock.acquire()
            counts = _current
        entry = counts.get(key)
        if entry is None:
            counts[key] = [1, now, now]
        else:
            entry[0] += 1
            entry[2] = now
        _ensure_flushers()
    except Exception:  # noqa: BLE001, S110  (never let counting reach a request)
        pass
    finally:
        lock.release()


def _roll(at: float) -> None:
    """The usage clock entered another hour (under ``_lock``)."""
    global _current, _hour, _hour_end
    hour = int(at) // HOUR
    _current = _hours.setdefault(hour, {})
    _hour, _hour_end = hour, (hour + 1) * HOUR
    if usage.ENABLED:
        usage._ensure_flusher()
    _ensure_flushers()


def _ensure_flushers() -> None:
    job = telemetry.recorder.job
    if telemetry.ENABLED and job.pid != telemetry._pid and telemetry._background:
        flusher.ensure_started(job)


def for_telemetry() -> bool:
    """Whether refusals wait here for telemetry."""
    return any(key[3] is not None for counts in list(_hours.values()) for key in list(counts))


def for_traffic() -> bool:
    """Whether ordinary refusals wait here for traffic."""
    return traffic.ENABLED and any(
        key[3] in (None, "") for counts in list(_hours.values()) for key in list(counts)
    )


def for_usage() -> bool:
    """Whether refusals wait here (or in usage's share) for usage."""
    return bool(_usage_share) or any(
        key[2] is not None for counts in list(_hours.values()) for key in list(counts)
    )


def split() -> None:
    """Hand what was counted to telemetry and usage (see the module's docstring)."""
    global _hours, _current
    with _split_lock:
        with _lock:
            hours = _hours
            if not any(hours.values()):
                return
            _current = {}
            _hours = {_hour: _current}
        for hour, counts in hours.items():
            share: dict[str, int] | None = None
            for (origin, path, policy, report, host), (n, first, last) in counts.items():
                if report is not None:
                    telemetry.recorder.add(origin, path, report, n, first, last)
                if not report and traffic.ENABLED:  # an ordinary refusal (not a report-only one)
                    traffic.add(origin, path, host, n, hour * HOUR if last is None else last)
                if policy is not None:
                    if share is None:
                        share = _usage_share.setdefault(hour, {})
                    share[policy] = share.get(policy, 0) + n


def take_usage() -> dict[int, dict[str, int]]:
    """Usage's share, split off now: hour -> {policy: refused requests}."""
    global _usage_share
    split()
    with _split_lock:
        share, _usage_share = _usage_share, {}
    return share


def usage_counts() -> dict[int, dict[str, list[int]]]:
    """Usage's per-policy counts not flushed yet, these refusals included (nothing is moved):
    hour -> {policy: [allowed, refused]} (tests, diagnostics)."""
    with _split_lock, _lock:
        counts = {
            h: {name: list(slot) for name, slot in list(per.items())}  # (requests add to them meanwhile)
            for h, per in list(usage._policies.items())
        }
        for hour, per_policy in _usage_share.items():
            for name, n in per_policy.items():
                counts.setdefault(hour, {}).setdefault(name, [0, 0])[1] += n
        for hour, waiting in _hours.items():
            for (_, _, counted, _, _), (n, _, _) in waiting.items():
                if counted is not None:
                    counts.setdefault(hour, {}).setdefault(counted, [0, 0])[1] += n
    return {hour: per for hour, per in counts.items() if per}


def clear() -> None:
    """Forget every count not split off yet, and usage's share (tests)."""
    global _hours, _current, _hour_end, _usage_share
    with _split_lock, _lock:
        _current = {}
        _hours = {}
        _hour_end = 0.0
        _usage_share = {}


def _forked() -> None:
    """In a forked child: what the parent counted is the parent's to hand over."""
    global _lock, _split_lock
    _lock = threading.Lock()
    _split_lock = threading.Lock()
    clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
telemetry.upstream = (split, for_telemetry)
usage.upstream = (take_usage, for_usage)
traffic.upstream = (split, for_traffic)
