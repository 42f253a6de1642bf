"""A policy's entries compiled for lookup: the ``EntryTable``, and where a stored entry goes in one.

Lookups cost the same at ten entries or a hundred thousand: exact origins (and ``null``)
are dictionary keys, wildcards are found by walking the request host's labels. A table
never changes once sealed; ``EntryTable.changed`` makes the next one in O(changes),
folding the changes into a new dictionary of exact origins once there are enough of them.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from django.core.exceptions import ValidationError

from .hosting import shared_hosting_platform
from .origins import ANY_PORT, DEFAULT_PORTS, MAX_LENGTH, ORIGIN_SCHEMES, parse_entry, split_request_origin
from .suffixes import wildcard_base_refused

logger = logging.getLogger("corsadmin")

# (entry id or None, entry text, expiry as a UNIX timestamp or inf)
Entry = tuple[int | None, str, float]


# An entry already in canonical form with a plain lower-case LDH host (as stored
# entries are): it can be split without idna. See _split_stored.
_LDH = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_CANONICAL = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<wildcard>\*\.)?(?P<host>{_LDH}(?:\.{_LDH})*)"
    r"(?::(?P<port>[1-9][0-9]{0,4}|\*))?"
)


def _split_stored(text: str) -> tuple[str, str, str, bool] | None:
    """(scheme, host, port, wildcard) as ``parse_entry(text)`` has them, for text that is
    already canonical; None when ``parse_entry`` itself must decide.

    Only what ``parse_entry`` would return unchanged takes the quick way; anything
    idna, the IP, port, scheme or public-suffix rules could change or refuse (an
    ``xn--`` label, ``--``, an IP, a default port, ``file``, a public suffix...)
    returns None.
    """
    match = _CANONICAL.fullmatch(text) if len(text) <= MAX_LENGTH and "--" not in text else None
    if match is None:
        return None
    scheme, wildcard, host, port = match.group("scheme", "wildcard", "host", "port")
    if (
        scheme not in ORIGIN_SCHEMES
        or len(host) > 253
        or host.rpartition(".")[2].isdigit()
        or (port and port != ANY_PORT and (int(port) > 65535 or DEFAULT_PORTS.get(scheme) == port))
        or (wildcard and wildcard_base_refused(host))
    ):
        return None
    return scheme, host, port or "", bool(wildcard)


# A plain stored exact origin (http or https, a lower-case LDH host whose last label is not
# all digits, no port, no "--", at most 253 characters of host) is exactly what _split_stored
# takes the quick way as exact, with no public suffix or port to look up: most stored rows.
_PLAIN_EXACT = re.compile(rf"https?://(?:{_LDH}\.)*(?![0-9]+\Z){_LDH}")
_PLAIN_MAX_LENGTH = min(MAX_LENGTH, len("http://") + 253)  # one fewer host character after https


# The value of an exact origin in an EntryTable: its entry id, or (id, expiry) when it expires.
ExactValue = Any


def entry_key(text: str) -> tuple[str, Any, str] | None:
    """Where an entry lives in a table, and its canonical text: ("exact", text, text) or
    ("pattern", key, text); None when the stored text is invalid (written around
    validation: one bad row must not stop the rest)."""
    if "--" not in text and len(text) <= _PLAIN_MAX_LENGTH and _PLAIN_EXACT.fullmatch(text):
        return "exact", text, text  # as below, without its groups and checks: most of a full load
    quick = _split_stored(text)  # no OriginEntry per row: half the time of a large build
    if quick is None:
        try:
            entry = parse_entry(text)
        except ValidationError:
            return None
        text, quick = entry.text, (entry.scheme, entry.host, entry.port, entry.wildcard)
    _scheme, _host, port, wildcard = quick
    if not wildcard and port != ANY_PORT:  # OriginEntry.is_exact
        return "exact", text, text
    return "pattern", quick, text


class EntryTable:
    """One policy's origins, immutable once built; ``changed`` makes the next one in O(changes).

    Exact origins (and null) are keys of ``exact`` (a dictionary, or a ``flat_table.FlatExact``
    mapped from a snapshot file), shared between tables; changes since
    it was built sit in the small ``recent`` (``None`` for a removed origin) until there
    are enough of them to fold into a new ``exact``. Wildcards and port wildcards are keys
    (scheme, host or base, port, wildcard?) of ``patterns``.
    """

    __slots__ = ("exact", "recent", "patterns", "_bases", "_hosting", "_live", "_exact_live")

    # Folding costs one copy of ``exact``: do it once per this many changes (or 1/16 of it).
    FOLD_AT = 4096

    def __init__(
        self,
        exact: Mapping[str, ExactValue] | None = None,
        patterns: dict[tuple[str, str, str, bool], Entry] | None = None,
        recent: dict[str, ExactValue] | None = None,
    ) -> None:
        self.exact = exact if exact is not None else {}
        self.recent = recent or {}
        self.patterns = patterns if patterns is not None else {}
        # Every host or wildcard base of a pattern: most labels of a request host miss
        # here with one string lookup, before any key tuple is built.
        self._bases = frozenset(key[1] for key in self.patterns)
        self._hosting: tuple[Entry, ...] | None = None
        self._live: float | None = None  # see live_until
        # (entries of ``exact`` that never expire, its latest expiry, whose): shared by the
        # tables made from this one with the same ``exact`` (see live_until).
        self._exact_live: tuple[int, float, str | None] | None = None

    @classmethod
    def build(cls, entries: Iterable[Entry], label: str = "") -> EntryTable:
        table = cls()
        for entry_id, text, expires in entries:
            table.add(entry_id, text, expires, label)
        table.seal()
        return table

    def add(self, entry_id: int | None, text: str, expires: float, label: str = "") -> str | None:
        """While building (before ``seal``): add an entry; its canonical text, or None if invalid."""
        found = entry_key(text)
        if found is None:
            logger.warning(
                "corsadmin: ignoring invalid stored origin %r in policy %s",
                text,
                label,
                extra={"event": "ignored_origin", "origin": text, "policy": label},
            )
            return None
        where, key, canonical = found
        if where == "exact":
            value = entry_id if expires == math.inf else (entry_id, expires)
            cast(dict[str, ExactValue], self.exact)[key] = value
        else:
            self.patterns[key] = (entry_id, canonical, expires)
        return canonical

    def add_exact(self, entries: Iterable[tuple[str, int]]) -> None:
        """While building: add (canonical text, entry id) of exact entries that never expire,
        as ``entry_key`` found them (what ``add`` does for each, without a call per entry)."""
        cast(dict[str, ExactValue], self.exact).update(entries)

    def seal(self) -> None:
        """Done building: index the patterns' hosts."""
        self._bases = frozenset(key[1] for key in self.patterns)
        self._hosting = None
        self._live = self._exact_live = None

    def live_until(self) -> float:
        """Until when some entry of the table can match an origin: ``inf`` when one never
        expires, else the latest expiry (``-inf``: no entry). Found once per table, at once
        when one of the first entries never expires; else the counts of ``exact`` are taken
        once and shared by the tables ``changed`` makes from it (O(changes) for those)."""
        live = self._live
        if live is None:
            live = self._live = self._find_live()
        return live

    def _find_live(self) -> float:
        exact, recent = self.exact, self.recent
        for value in recent.values():
            if value is not None and type(value) is not tuple:
                return math.inf
        for entry in self.patterns.values():
            if entry[2] == math.inf:
                return math.inf
        stats = self._exact_live
        if stats is None:
            # Most tables hold an entry that never expires among their first few: no count.
            for key, value in itertools.islice(exact.items(), 64):
                if type(value) is not tuple and key not in recent:
                    return math.inf
            stats = self._exact_live = _live_stats(exact.items())  # once per ``exact``
        forever, latest, latest_key = stats
        for key in recent:
            old = exact.get(key)
            if old is not None and type(old) is not tuple:  # replaced or removed
                forever -= 1
        if forever > 0:
            return math.inf
        if latest_key in recent:  # the latest was replaced or removed: ask the rest (rare)
            latest = _live_stats((k, v) for k, v in exact.items() if k not in recent)[1]
        for value in recent.values():
            if value is not None and value[1] > latest:
                latest = value[1]
        for entry in self.patterns.values():
            if entry[2] > latest:
                latest = entry[2]
        return latest

    def hosting_wildcards(self) -> tuple[Entry, ...]:
        """The wildcards on a shared hosting platform (``corsadmin.hosting``), sorted by text;
        found once per table (a table never changes once sealed): a rebuild that leaves a
        policy's entries alone costs nothing here."""
        found = self._hosting
        if found is None:
            found = self._hosting = tuple(
                sorted(
                    (
                        entry
                        for key, entry in self.patterns.items()
                        if key[3] and shared_hosting_platform(key[1])
                    ),
                    key=lambda entry: entry[1],
                )
            )
        return found

    def without_hosting_wildcards(self) -> EntryTable:
        """This table less its wildcards on shared hosting (the exact origins are shared)."""
        patterns = {
            key: entry
            for key, entry in self.patterns.items()
            if not (key[3] and shared_hosting_platform(key[1]))
        }
        table = EntryTable(self.exact, patterns, self.recent)
        table._hosting = ()
        table._exact_live = self._exact_live
        return table

    def __len__(self) -> int:
        removed = sum(1 for key, value in self.recent.items() if value is None and key in self.exact)
        added = sum(1 for key, value in self.recent.items() if value is not None and key not in self.exact)
        return len(self.exact) + added - removed + len(self.patterns)

    def changed(
        self, removed: Iterable[tuple[str, Any]], added: Iterable[tuple[tuple[str, Any], Entry]]
    ) -> EntryTable:
        """A new table: this one less ``removed`` keys, plus ``added`` ((where, key), entry)."""
        recent = dict(self.recent)
        patterns: dict[tuple[str, str, str, bool], Entry] | None = None
        for where, key in removed:
            if where == "exact":
                recent[key] = None
            else:
                if patterns is None:
                    patterns = dict(self.patterns)
                patterns.pop(key, None)
        for (where, key), (entry_id, text, expires) in added:
            if where == "exact":
                recent[key] = entry_id if expires == math.inf else (entry_id, expires)
            else:
                if patterns is None:
                    patterns = dict(self.patterns)
                patterns[key] = (entry_id, text, expires)
        exact = self.exact
        if len(recent) > max(self.FOLD_AT, len(exact) >> 4):
            exact, recent = _fold(exact, recent), {}
        table = EntryTable(exact, self.patterns if patterns is None else patterns, recent)
        if exact is self.exact:
            table._exact_live = self._exact_live
        return table

    def folded(self) -> EntryTable:
        """The same entries with ``recent`` folded into a new dictionary of exact origins."""
        if not self.recent:
            return self
        return EntryTable(_fold(self.exact, self.recent), self.patterns)

    def exact_value(self, origin: str) -> ExactValue:
        if self.recent:
            value = self.recent.get(origin, _MISSING)
            if value is not _MISSING:
                return value
        return self.exact.get(origin)

    def ids(self) -> Iterable[Any]:
        """Every entry id in the table."""
        for key, value in self.exact.items():
            if key not in self.recent:
                yield value if type(value) is int else value[0]
        for value in self.recent.values():
            if value is not None:
                yield value if type(value) is int else value[0]
        for entry in self.patterns.values():
            yield entry[0]

    def find(self, origin: str, now: float) -> Entry | None:
        """The entry allowing this origin, if any."""
        value: ExactValue = self.recent.get(origin, _MISSING) if self.recent else _MISSING
        if value is _MISSING:
            value = self.exact.get(origin)
        if value is not None:
            if type(value) is not tuple:
                return (value, origin, math.inf)
            if value[1] > now:
                return (value[0], origin, value[1])
        if self.patterns:
            return self._find_pattern(origin, now)
        return None

    def _find_pattern(self, origin: str, now: float) -> Entry | None:
        parts = split_request_origin(origin)
        if parts is None:
            return None
        scheme, host, port = parts
        patterns, bases = self.patterns, self._bases
        if host in bases:
            entry = patterns.get((scheme, host, ANY_PORT, False))
            if entry is not None and entry[2] > now:
                return entry
        dot = host.find(".")
        while dot != -1:
            base = host[dot + 1 :]
            if base in bases:
                for key in ((scheme, base, port, True), (scheme, base, ANY_PORT, True)):
                    entry = patterns.get(key)
                    if entry is not None and entry[2] > now:
                        return entry
            dot = host.find(".", dot + 1)
        return None


_MISSING = object()
EMPTY_TABLE = EntryTable()


def _live_stats(items: Iterable[tuple[str, ExactValue]]) -> tuple[int, float, str | None]:
    """(how many never expire, the latest expiry of the others, its key) of exact entries."""
    forever, latest, latest_key = 0, -math.inf, None
    for key, value in items:
        if type(value) is not tuple:
            forever += 1
        elif value[1] > latest:
            latest, latest_key = value[1], key
    return forever, latest, latest_key


def _fold(exact: Mapping[str, ExactValue], recent: dict[str, ExactValue]) -> dict[str, ExactValue]:
    """``exact`` with ``recent`` applied, copied in slices so that no single step holds
    the GIL long enough to delay the requests being answered meanwhile."""
    folded: dict[str, ExactValue] = {}
    items = iter(exact.items())
    while True:
        before = len(folded)
        folded.update(itertools.islice(items, 20000))
        if len(folded) == before:
            break
    for key, value in recent.items():
        if value is None:
            folded.pop(key, None)
        else:
            folded[key] = value
    return folded
