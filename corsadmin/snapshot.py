"""The compiled allow-list and the one decision everyone asks.

A ``Snapshot`` is immutable: the refresh layer builds a new one and swaps it in.
Lookups cost the same at ten entries or a hundred thousand: exact origins are
dictionary keys, wildcards are found by walking the request host's labels.
"""

from __future__ import annotations

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
    OriginEntry,
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


def _parse_stored(text: str) -> OriginEntry:
    """``parse_entry(text)``, ten times quicker for text that is already canonical."""
    quick = _split_stored(text)
    if quick is None:
        return parse_entry(text)
    scheme, host, port, wildcard = quick
    return OriginEntry(text=text, scheme=scheme, host=host, port=port, wildcard=wildcard)


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
REFUSED = Decision(covered=True)


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
        "exact",
        "patterns",
        "_bases",
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
    ) -> None:
        self.name = name
        self.priority = priority
        self.match_path = compile_path_regex(url_regex)
        self.allow_all = allow_all_origins
        self.credentials = allow_credentials
        self.methods = tuple(allow_methods)
        self.headers = tuple(allow_headers)
        self.private_network = allow_private_network
        # origin text -> Entry, for exact origins (and null)
        self.exact: dict[str, Entry] = {}
        # (scheme, host or wildcard base, port or ANY_PORT, wildcard?) -> Entry
        self.patterns: dict[tuple[str, str, str, bool], Entry] = {}
        for entry_id, text, expires in entries:
            quick = _split_stored(text)  # no OriginEntry per row: half the time of a large build
            if quick is None:
                try:
                    entry = parse_entry(text)
                except ValidationError:
                    # Written around validation (raw SQL): one bad row must not stop the rest.
                    logger.warning("corsadmin: ignoring invalid stored origin %r in policy %s", text, name)
                    continue
                text, quick = entry.text, (entry.scheme, entry.host, entry.port, entry.wildcard)
            scheme, host, port, wildcard = quick
            if not wildcard and port != ANY_PORT:  # OriginEntry.is_exact
                self.exact[text] = (entry_id, text, expires)
            else:
                self.patterns[(scheme, host, port, wildcard)] = (entry_id, text, expires)
        # Every host or wildcard base of a pattern: most labels of a request host miss
        # here with one string lookup, before any key tuple is built.
        self._bases = frozenset(key[1] for key in self.patterns)
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
        entry = self.exact.get(origin)
        if entry is not None and entry[2] > now:
            return entry
        if self.patterns:
            entry = self._find_pattern(origin, now)
            if entry is not None:
                return entry
        if self.allow_all and (origin == NULL or split_request_origin(origin) is not None):
            return ALL_ORIGINS
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

    __slots__ = ("generation", "policies", "csrf", "fallback", "built_at")

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

    def decide(
        self,
        origin: str | None,
        path: str,
        method: str = "GET",
        preflight: bool = False,
        private_network: bool = False,
    ) -> Decision:
        if not origin:  # the same answer as below, without building the list
            for policy in self.policies:
                if policy.match_path(path):
                    return REFUSED
            return NOT_COVERED
        covering = [p for p in self.policies if p.match_path(path)]
        if not covering:
            return NOT_COVERED
        now = time.time()
        for policy in covering:
            entry = policy.find(origin, now)
            if entry is None:
                continue
            if entry is ALL_ORIGINS and policy.credentials and not header_safe(origin):
                continue
            return Decision(
                covered=True,
                allowed=True,
                policy=policy.name,
                matched=entry[1],
                entry_id=entry[0],
                headers=policy.response_headers(origin, method, preflight, private_network),
            )
        return REFUSED

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
