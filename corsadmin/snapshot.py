"""The compiled allow-list and the one decision everyone asks.

A ``Snapshot`` is immutable: the refresh layer builds a new one and swaps it in. It holds
each enabled policy compiled (``CompiledPolicy``: its headers ready, its entries in
``entries.EntryTable``s), the policies of each request host (``host_index.HostIndex``), and
answers ``decide()`` with a ``Decision``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .entries import Entry, EntryTable
from .host_index import HostIndex
from .origins import NULL, split_request_origin
from .regex import compile_path_regex

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
ALLOW_METHODS = "Access-Control-Allow-Methods"
MAX_AGE = "Access-Control-Max-Age"
ALLOW_PRIVATE_NETWORK = "Access-Control-Allow-Private-Network"

FOREVER = math.inf
# What ``CompiledPolicy.find`` answers for an origin an allow-all policy allows.
ALL_ORIGINS: Entry = (None, "*", math.inf)


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
    ``counted``: for a refusal ``decide`` made, the policy usage counts it for (the first
    enforcing policy covering the request, ``usage.covering``'s answer); None: not known
    here (ask ``usage.covering``). Not part of the decision's value (equality).
    """

    covered: bool
    allowed: bool = False
    policy: str | None = None
    matched: str | None = None
    entry_id: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    denied_policy: str | None = None
    denied_by: str | None = None
    denied_id: int | None = None
    would_refuse: tuple[str, ...] = ()
    counted: str | None = field(default=None, compare=False)


NOT_COVERED = Decision(covered=False)
# Decisions remembered per snapshot (cleared when full: hostile origins cannot grow it).
MEMO_SIZE = 4096
REFUSED = Decision(covered=True)


class CompiledPolicy:
    """One policy, compiled: its path regex, its entry tables and its response headers ready."""

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
        "csrf",
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
        entries: Iterable[Entry] = (),
        table: EntryTable | None = None,
        refuse_null: bool = False,
        mode: str = "enforce",
        hosts: Iterable[str] = (),
        denies: EntryTable | Iterable[Entry] | None = None,
        ignored: tuple[Entry, ...] = (),
        csrf: Iterable[Entry] = (),
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
        # The allow entries flagged ``csrf_trusted`` (None when none is): trusted by the CSRF
        # check for the requests this policy covers, its exceptions still winning.
        csrf = tuple(csrf)
        self.csrf = EntryTable.build(csrf, name) if csrf and mode != "report" else None
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
        "fallback",
        "built_at",
        "hosts",
        "reports",
        "skipped",
        "_memo",
        "_refused",
    )

    def __init__(
        self,
        policies: Iterable[CompiledPolicy],
        generation: int | None = None,
        fallback: CompiledPolicy | None = None,
    ) -> None:
        self.generation = generation
        self.policies = tuple(sorted(policies, key=lambda p: (-p.priority, p.name)))
        # The policies that apply to a request's host, in order; ``hosts.scoped``: some
        # policy names hosts (else the host is never asked for).
        self.hosts: HostIndex[CompiledPolicy] = HostIndex(self.policies, lambda p: p.hosts)
        self.reports = any(p.report for p in self.policies)  # some policy is report-only
        # The headers for a request a check_request_enabled receiver allows.
        self.fallback = fallback
        self.built_at = time.time()
        # The stored rows left out of this snapshot (``loader.Skipped``: written around validation).
        self.skipped: tuple[Any, ...] = ()
        # (origin, path, method, preflight, private network, host) -> its decision
        self._memo: dict[tuple[str | None, str, str, bool, bool, str | None], Decision] = {}
        # policy name -> the refusal counted for it (one object per policy, like REFUSED)
        self._refused: dict[str, Decision] = {}

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
        denied: tuple[str, str, int | None] | None = None
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
        counted = next(p.name for p in covering if not p.report)  # what usage counts it for
        if denied is None:
            refused = self._refused.get(counted)
            if refused is None:
                refused = self._refused[counted] = Decision(covered=True, counted=counted)
            return refused, lasting
        name, text, entry_id = denied
        return Decision(
            covered=True, denied_policy=name, denied_by=text, denied_id=entry_id, counted=counted
        ), lasting

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

    def csrf_trusts(self, origin: str, path: str, host: str | None = None) -> bool:
        """Whether an entry flagged ``csrf_trusted`` trusts the origin for this request: in
        an enabled, enforcing policy covering its path (and host), that policy's own
        exceptions not refusing it. ``host`` as for ``decide``."""
        now = time.time()
        for policy in self.hosts.get(host):
            trusted = policy.csrf
            if (
                trusted is not None
                and policy.match_path(path)
                and trusted.find(origin, now) is not None
                and policy.denied(origin, now) is None
            ):
                return True
        return False


EMPTY = Snapshot(())
