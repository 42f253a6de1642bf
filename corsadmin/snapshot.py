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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from .origins import (
    ANY_PORT,
    DEFAULT_PORTS,
    MAX_LENGTH,
    NON_WEB_SCHEMES,
    NULL,
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
        scheme == "file"
        or scheme in NON_WEB_SCHEMES
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

    ``covered``: some enabled policy covers the path (so ``Vary: Origin``).
    ``policy``/``matched``/``entry_id``: who allowed it, when allowed.
    ``headers``: the ``Access-Control-*`` headers of the response.
    """

    covered: bool
    allowed: bool = False
    policy: str | None = None
    matched: str | None = None
    entry_id: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


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

    __slots__ = ("exact", "recent", "patterns", "_bases")

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
        return EntryTable(exact, self.patterns if patterns is None else patterns, recent)

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


class CompiledPolicy:
    __slots__ = (
        "name",
        "priority",
        "match_path",
        "allow_all",
        "credentials",
        "methods",
        "headers",
        "private_network",
        "table",
        "refuse_null",
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
    ) -> None:
        self.name = name
        self.priority = priority
        self.match_path = compile_path_regex(url_regex)
        self.allow_all = allow_all_origins
        self.credentials = allow_credentials
        self.methods = tuple(allow_methods)
        self.headers = tuple(allow_headers)
        self.private_network = allow_private_network
        self.table = table if table is not None else EntryTable.build(entries, name)
        # 'null' listed on a credentials policy (written around validation): never honoured.
        self.refuse_null = refuse_null
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

    __slots__ = ("generation", "policies", "csrf", "fallback", "built_at", "_memo")

    def __init__(
        self,
        policies: Iterable[CompiledPolicy],
        generation: Any = None,
        csrf: CompiledPolicy | None = None,
        fallback: CompiledPolicy | None = None,
    ) -> None:
        self.generation = generation
        self.policies = tuple(sorted(policies, key=lambda p: (-p.priority, p.name)))
        # The origins trusted by the CSRF check (matched like a policy's entries).
        self.csrf = csrf or CompiledPolicy(name="(csrf)")
        # The headers for a request a check_request_enabled receiver allows.
        self.fallback = fallback
        self.built_at = time.time()
        self._memo: dict[tuple[Any, ...], Decision] = {}

    def decide(
        self,
        origin: str | None,
        path: str,
        method: str = "GET",
        preflight: bool = False,
        private_network: bool = False,
    ) -> Decision:
        # Browsers repeat the same few requests: remember the answers that time cannot
        # change (refusals, and allows by entries that never expire), a bounded number.
        key = (origin, path, method, preflight, private_network)
        decision = self._memo.get(key)
        if decision is None:
            decision, lasting = self._decide(origin, path, method, preflight, private_network)
            if lasting:
                memo = self._memo
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                memo[key] = decision
        return decision

    def _decide(
        self, origin: str | None, path: str, method: str, preflight: bool, private_network: bool
    ) -> tuple[Decision, bool]:
        """The decision, and whether it lasts (no entry that may expire decided it)."""
        if not origin:  # the same answer as below, without building the list
            for policy in self.policies:
                if policy.match_path(path):
                    return REFUSED, True
            return NOT_COVERED, True
        covering = [p for p in self.policies if p.match_path(path)]
        if not covering:
            return NOT_COVERED, True
        now = time.time()
        for policy in covering:
            entry = policy.find(origin, now)
            if entry is None:
                continue
            if entry is ALL_ORIGINS and policy.credentials and not header_safe(origin):
                continue
            decision = Decision(
                covered=True,
                allowed=True,
                policy=policy.name,
                matched=entry[1],
                entry_id=entry[0],
                headers=policy.response_headers(origin, method, preflight, private_network),
            )
            return decision, entry[2] == math.inf
        return REFUSED, True

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

    def csrf_trusts(self, origin: str) -> bool:
        return self.csrf.find(origin, time.time()) is not None


EMPTY = Snapshot(())
