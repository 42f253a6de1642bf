"""The compiled allow-list and the one decision everyone asks.

A ``Snapshot`` is immutable: the refresh layer builds a new one and swaps it in.
Lookups cost the same at ten entries or a hundred thousand: exact origins are
dictionary keys, wildcards are found by walking the request host's labels.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError

from .hosting import shared_hosting_platform
from .origins import (
    ANY_PORT,
    DEFAULT_PORTS,
    MAX_LENGTH,
    NULL,
    ORIGIN_SCHEMES,
    parse_entry,
    split_request_origin,
    wildcard_base_refused,
)
from .regex import compile_path_regex

logger = logging.getLogger("corsadmin")

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
ALLOW_METHODS = "Access-Control-Allow-Methods"
MAX_AGE = "Access-Control-Max-Age"
ALLOW_PRIVATE_NETWORK = "Access-Control-Allow-Private-Network"

# (entry id or None, entry text, expiry as a UNIX timestamp or inf)
Entry = tuple[Any, str, float]
FOREVER = math.inf
ALL_ORIGINS: Entry = (None, "*", math.inf)


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


@dataclass(frozen=True, slots=True)
class Decision:
    """What the allow-list says about one request.

    ``covered``: some enabled, enforcing policy covers the path (so ``Vary: Origin``).
    ``policy``/``matched``/``entry_id``: who allowed it, when allowed.
    ``headers``: the ``Access-Control-*`` headers of the response.
    ``denied_policy``/``denied_by``/``denied_id``: the first deny entry (an exception) that
    matched on the way (its policy, text and id): it refused the origin in that policy.
    ``would_refuse``: the report-only policies covering the request that would refuse the
    origin the real decision allowed.
    """

    covered: bool
    allowed: bool = False
    policy: str | None = None
    matched: str | None = None
    entry_id: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    denied_policy: str | None = None
    denied_by: str | None = None
    denied_id: Any = None
    would_refuse: tuple[str, ...] = ()


NOT_COVERED = Decision(covered=False)
# Decisions remembered per snapshot (cleared when full: hostile origins cannot grow it).
MEMO_SIZE = 4096
REFUSED = Decision(covered=True)


# The value of an exact origin in an EntryTable: its entry id, or (id, expiry) when it expires.
ExactValue = Any


def entry_key(text: str) -> tuple[str, Any, str] | None:
    """Where an entry lives in a table, and its canonical text: ("exact", text, text) or
    ("pattern", key, text); None when the stored text is invalid (written around
    validation: one bad row must not stop the rest)."""
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

    Exact origins (and null) are keys of ``exact``, shared between tables; changes since
    it was built sit in the small ``recent`` (``None`` for a removed origin) until there
    are enough of them to fold into a new ``exact``. Wildcards and port wildcards are keys
    (scheme, host or base, port, wildcard?) of ``patterns``.
    """

    __slots__ = ("exact", "recent", "patterns", "_bases", "_hosting", "_live", "_exact_live")

    # Folding costs one copy of ``exact``: do it once per this many changes (or 1/16 of it).
    FOLD_AT = 4096

    def __init__(
        self,
        exact: dict[str, ExactValue] | None = None,
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
    def build(cls, entries: Iterable[tuple[Any, str, float]], label: str = "") -> EntryTable:
        table = cls()
        for entry_id, text, expires in entries:
            table.add(entry_id, text, expires, label)
        table.seal()
        return table

    def add(self, entry_id: Any, text: str, expires: float, label: str = "") -> str | None:
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
            self.exact[key] = entry_id if expires == math.inf else (entry_id, expires)
        else:
            self.patterns[key] = (entry_id, canonical, expires)
        return canonical

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
        value = self.recent.get(origin, _MISSING) if self.recent else _MISSING
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


def _fold(exact: dict[str, ExactValue], recent: dict[str, ExactValue]) -> dict[str, ExactValue]:
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


T = TypeVar("T")


class HostIndex(Generic[T]):
    """Which items (policies) apply to a request's host (canonical, port-less): those for
    every host, those naming it, and those with a wildcard on one of its parents (found by
    walking the host's labels). Memoised per host, a bounded number."""

    MEMO_SIZE = 1024

    __slots__ = ("_every", "_exact", "_wildcards", "_order", "_memo", "scoped")

    def __init__(self, items: Sequence[T], hosts_of: Any) -> None:
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


class CompiledPolicy:
    __slots__ = (
        "name",
        "priority",
        "report",
        "hosts",
        "denies",
        "match_path",
        "allow_all",
        "credentials",
        "methods",
        "headers",
        "private_network",
        "table",
        "refuse_null",
        "ignored",
        "live_until",
        "_common",
        "_options",
    )

    def __init__(
        self,
        *,
        name: str,
        url_regex: str | re.Pattern[str] = "^/",
        priority: int = 0,
        allow_all_origins: bool = False,
        allow_credentials: bool = False,
        allow_methods: Iterable[str] = (),
        allow_headers: Iterable[str] = (),
        expose_headers: Iterable[str] = (),
        max_age: int = 0,
        allow_private_network: bool = False,
        entries: Iterable[tuple[Any, str, float]] = (),
        table: EntryTable | None = None,
        refuse_null: bool = False,
        mode: str = "enforce",
        hosts: Iterable[str] = (),
        denies: EntryTable | Iterable[tuple[Any, str, float]] | None = None,
        ignored: tuple[Entry, ...] = (),
    ) -> None:
        self.name = name
        self.priority = priority
        self.report = mode == "report"
        self.hosts = tuple(hosts)
        # The deny entries (exceptions): None when there are none, the common case.
        if denies is not None and not isinstance(denies, EntryTable):
            denies = EntryTable.build(denies, name)
        self.denies = denies if denies else None
        self.match_path = compile_path_regex(url_regex)
        self.allow_all = allow_all_origins
        self.credentials = allow_credentials
        self.methods = tuple(allow_methods)
        self.headers = tuple(allow_headers)
        self.private_network = allow_private_network
        self.table = table if table is not None else EntryTable.build(entries, name)
        # 'null' listed on a credentials policy (written around validation): never honoured.
        self.refuse_null = refuse_null
        # Entries stored but never honoured (kept out of ``table``), for ``check`` to explain:
        # wildcards on shared hosting listed on a credentials policy around validation.
        self.ignored = ignored
        # Until when the policy can allow some origin (``inf``: for good): an enabled,
        # unexpired allow entry, or allow-all. Past it the policy covers nothing: no
        # preflight answered, no ``Vary`` (so the seeded, empty ``default`` changes no
        # response). Deny entries allow nothing; nor does ``null`` it refuses.
        self.live_until = math.inf if allow_all_origins else self._table_live_until()
        common = {}
        if allow_credentials:
            common[ALLOW_CREDENTIALS] = "true"
        if expose_headers:
            common[EXPOSE_HEADERS] = ", ".join(expose_headers)
        self._common = common
        options = {ALLOW_HEADERS: ", ".join(self.headers), ALLOW_METHODS: ", ".join(self.methods)}
        if max_age:
            options[MAX_AGE] = str(max_age)
        self._options = options

    def _table_live_until(self) -> float:
        table = self.table
        if self.refuse_null and len(table) == 1 and table.exact_value(NULL) is not None:
            return -math.inf
        return table.live_until()

    def covers(self, path: str, now: float) -> bool:
        """Whether the policy covers ``path`` at ``now``: its ``url_regex`` matches and it
        can allow some origin (its hosts aside)."""
        return self.live_until > now and self.match_path(path) is not None

    def denied(self, origin: str, now: float) -> Entry | None:
        """The deny entry refusing this origin in this policy, if any."""
        denies = self.denies
        return None if denies is None else denies.find(origin, now)

    def find(self, origin: str, now: float) -> Entry | None:
        """The entry allowing this origin, if any (``ALL_ORIGINS`` for allow-all)."""
        entry = self.table.find(origin, now)
        if entry is not None:
            if not (self.refuse_null and origin == NULL):
                return entry
        elif self.allow_all and (origin == NULL or split_request_origin(origin) is not None):
            return ALL_ORIGINS
        return None

    def response_headers(
        self, origin: str, method: str, preflight: bool, private_network: bool
    ) -> dict[str, str]:
        if self.allow_all and not self.credentials:
            headers = {ALLOW_ORIGIN: "*"}
        else:
            headers = {ALLOW_ORIGIN: origin}
        headers.update(self._common)
        if method == "OPTIONS":
            headers.update(self._options)
            if preflight and private_network and self.private_network:
                headers[ALLOW_PRIVATE_NETWORK] = "true"
        return headers


def header_safe(value: str) -> bool:
    """Only printable ASCII may be copied from a request into a response header (and never
    a bare '*': echoed next to Allow-Credentials it would read as the wildcard)."""
    return value != "*" and value.isascii() and value.isprintable()


class Snapshot:
    """An immutable, compiled allow-list; ``decide`` is the one decision."""

    __slots__ = (
        "generation",
        "policies",
        "csrf",
        "csrf_denies",
        "fallback",
        "built_at",
        "hosts",
        "reports",
        "skipped",
        "_memo",
    )

    def __init__(
        self,
        policies: Iterable[CompiledPolicy],
        generation: Any = None,
        csrf: CompiledPolicy | None = None,
        fallback: CompiledPolicy | None = None,
        csrf_denies: Iterable[tuple[EntryTable, EntryTable]] = (),
    ) -> None:
        self.generation = generation
        self.policies = tuple(sorted(policies, key=lambda p: (-p.priority, p.name)))
        # The policies that apply to a request's host, in order; ``hosts.scoped``: some
        # policy names hosts (else the host is never asked for).
        self.hosts: HostIndex[CompiledPolicy] = HostIndex(self.policies, lambda p: p.hosts)
        self.reports = any(p.report for p in self.policies)  # some policy is report-only
        # The origins trusted by the CSRF check (matched like a policy's entries).
        self.csrf = csrf or CompiledPolicy(name="(csrf)")
        # (CSRF-trusted entries, deny entries) of each policy with both (``csrf`` holds the
        # trusted entries of the policies without exceptions): a policy's own exceptions
        # are never trusted through its entries.
        self.csrf_denies = tuple(csrf_denies)
        # The headers for a request a check_request_enabled receiver allows.
        self.fallback = fallback
        self.built_at = time.time()
        # The stored rows left out of this snapshot (``loader.Skipped``: written around validation).
        self.skipped: tuple[Any, ...] = ()
        self._memo: dict[tuple[Any, ...], Decision] = {}

    def decide(
        self,
        origin: str | None,
        path: str,
        method: str = "GET",
        preflight: bool = False,
        private_network: bool = False,
        host: str | None = None,
    ) -> Decision:
        """The decision for a request; ``host`` (port-less, lower case) only matters when
        some policy names hosts: None (unknown or disallowed) is every-host policies only."""
        # Browsers repeat the same few requests: remember the answers that time cannot
        # change (refusals, and allows by entries that never expire), a bounded number.
        key = (origin, path, method, preflight, private_network, host)
        decision = self._memo.get(key)
        if decision is None:
            decision, lasting = self._decide(origin, path, method, preflight, private_network, host)
            if lasting:
                memo = self._memo
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                memo[key] = decision
        return decision

    def _decide(
        self,
        origin: str | None,
        path: str,
        method: str,
        preflight: bool,
        private_network: bool,
        host: str | None = None,
    ) -> tuple[Decision, bool]:
        """The decision, and whether it lasts (no entry that may expire decided it).

        Policies are tried by priority; a report-only one never decides. In a policy, a
        deny entry matching the origin wins over its allow entries and allow-all: that
        policy does not allow the origin, and the next one is tried.
        """
        policies = self.hosts.get(host)
        if not origin:  # the same answer as below, without building the list
            for policy in policies:
                if not policy.report and policy.match_path(path):
                    until = policy.live_until
                    if until == FOREVER:
                        return REFUSED, True
                    if until > time.time():  # covers until its last entry expires
                        return REFUSED, False
            return NOT_COVERED, True  # a policy that allows nothing stays so (in this snapshot)
        now = time.time()
        # A policy that can allow nothing (no enabled, unexpired allow entry, not allow-all)
        # covers nothing. One whose entries all expire covers until the last one does: no
        # answer it is part of is remembered.
        covering = [p for p in policies if p.live_until > now and p.match_path(path)]
        if not covering:
            return NOT_COVERED, True
        lasting = True
        for policy in covering:
            if policy.live_until != FOREVER:
                lasting = False
        denied: tuple[str, str, Any] | None = None
        reporting = 0
        for policy in covering:
            if policy.report:
                reporting += 1
                continue
            entry, deny = self._judge(policy, origin, now)
            if deny is not None:
                lasting = lasting and deny[2] == math.inf  # when it expires, the answer changes
                if denied is None:
                    denied = (policy.name, deny[1], deny[0])
                continue
            if entry is None:
                continue
            would_refuse, reports_last = (
                self._would_refuse(covering, origin, now) if self.reports else ((), True)
            )
            decision = Decision(
                covered=True,
                allowed=True,
                policy=policy.name,
                matched=entry[1],
                entry_id=entry[0],
                headers=policy.response_headers(origin, method, preflight, private_network),
                denied_policy=denied[0] if denied else None,
                denied_by=denied[1] if denied else None,
                denied_id=denied[2] if denied else None,
                would_refuse=would_refuse,
            )
            return decision, lasting and reports_last and entry[2] == math.inf
        if reporting == len(covering):  # only report-only policies: as if none covered it
            return NOT_COVERED, True
        if denied is None:
            return REFUSED, lasting
        name, text, entry_id = denied
        return Decision(covered=True, denied_policy=name, denied_by=text, denied_id=entry_id), lasting

    @staticmethod
    def _judge(policy: CompiledPolicy, origin: str, now: float) -> tuple[Entry | None, Entry | None]:
        """(the entry by which this policy allows the origin, the deny entry refusing it)."""
        deny = policy.denied(origin, now)
        if deny is not None:
            return None, deny
        entry = policy.find(origin, now)
        if entry is ALL_ORIGINS and policy.credentials and not header_safe(origin):
            return None, None
        return entry, None

    def _would_refuse(
        self, covering: list[CompiledPolicy], origin: str, now: float
    ) -> tuple[tuple[str, ...], bool]:
        """The report-only policies covering the request that, judged on their own, would
        not allow the origin; and whether that lasts (no entry that may expire counted)."""
        reporting = [p for p in covering if p.report]
        if not reporting:
            return (), True
        refusing = []
        lasting = True
        for policy in reporting:
            entry, deny = self._judge(policy, origin, now)
            decisive = entry if entry is not None else deny
            if decisive is not None and decisive[2] != math.inf:
                lasting = False
            if entry is None:
                refusing.append(policy.name)
        return tuple(refusing), lasting

    def allowed_by_receiver(
        self, origin: str | None, method: str, preflight: bool, private_network: bool
    ) -> Decision:
        """The decision when a ``check_request_enabled`` receiver enables the request."""
        policy = self.fallback
        if policy is None:
            return REFUSED
        if not origin or not header_safe(origin):
            return REFUSED
        return Decision(
            covered=True,
            allowed=True,
            policy=policy.name,
            matched="check_request_enabled",
            headers=policy.response_headers(origin, method, preflight, private_network),
        )

    def policy_allows(self, name: str, origin: str) -> bool | None:
        """Whether the policy ``name``, judged on its own, allows the origin (None: no such
        enabled policy). What a report-only policy would answer if it enforced."""
        for policy in self.policies:
            if policy.name == name:
                return self._judge(policy, origin, time.time())[0] is not None
        return None

    def csrf_trusts(self, origin: str) -> bool:
        now = time.time()
        if self.csrf.find(origin, now) is not None:
            return True
        for trusted, denies in self.csrf_denies:  # policies with exceptions: never trusted past them
            if trusted.find(origin, now) is not None and denies.find(origin, now) is None:
                return True
        return False


EMPTY = Snapshot(())
