"""The compiled allow-list and its decision, without a database."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from corsadmin import snapshot as snapshot_module
from corsadmin.entries import EntryTable, entry_key
from corsadmin.snapshot import CompiledPolicy, Snapshot

from .cors_helpers import APP, DEFAULT_HEADERS, DEFAULT_METHODS

FOREVER = math.inf


def policy(name="default", entries=(), **options):
    options.setdefault("allow_methods", DEFAULT_METHODS.split(", "))
    options.setdefault("allow_headers", DEFAULT_HEADERS.split(", "))
    options.setdefault("max_age", 7200)
    return CompiledPolicy(
        name=name,
        entries=[(index, text, expires) for index, (text, expires) in enumerate(entries, start=1)],
        **options,
    )


def listing(*texts, **options):
    return Snapshot([policy(entries=[(text, FOREVER) for text in texts], **options)])


def allowed(snap, origin, path="/"):
    return snap.decide(origin, path).allowed


# --- matching ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://sub.example.com", True),
        ("https://a.b.example.com", True),
        ("https://xn--bcher-kva.example.com", True),
        ("https://example.com", False),
        ("https://evil-example.com", False),
        ("https://example.com.evil.net", False),
        ("https://sub.example.com.evil.net", False),
        ("https://subexample.com", False),
        ("http://sub.example.com", False),
        ("https://sub.example.com:8443", False),
        ("https://SUB.example.com", False),
        ("https://sub.example.com.", False),
        ("https://sub.example.com/", False),
        ("https://.example.com", False),
        ("null", False),
        ("https://-.example.com", False),
        ("https://a-.example.com", False),
        ("https://" + "a" * 64 + ".example.com", False),
        ("https://" + "a." * 121 + "example.com", True),  # a host of 253 characters
        ("https://" + "a." * 122 + "example.com", False),  # 255: no browser sends it
    ],
)
def test_subdomain_wildcard(origin, expected):
    assert allowed(listing("https://*.example.com"), origin) is expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://sub.example.com:8443", True),
        ("https://sub.example.com", False),
        ("https://sub.example.com:8444", False),
    ],
)
def test_subdomain_wildcard_with_port(origin, expected):
    assert allowed(listing("https://*.example.com:8443"), origin) is expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://sub.example.com:8443", True),
        ("https://a.b.example.com:1", True),
        ("https://sub.example.com", True),
        ("https://example.com:8443", False),
    ],
)
def test_subdomain_and_port_wildcard(origin, expected):
    assert allowed(listing("https://*.example.com:*"), origin) is expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://localhost:3000", True),
        ("http://localhost:65535", True),
        ("https://localhost:3000", False),
        ("http://127.0.0.1:3000", False),
        ("http://sub.localhost:3000", False),
        ("http://localhost.evil.net:3000", False),
        ("http://localhost:3000/", False),
        ("http://localhost:99999", False),
    ],
)
def test_port_wildcard(origin, expected):
    assert allowed(listing("http://localhost:*"), origin) is expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (APP, True),
        ("https://App.example.com", False),
        ("https://app.example.com:443", False),
        ("https://app.example.com/", False),
        ("https://app.example.com.", False),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://sub.app.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("https://app.example.co", False),
        (" https://app.example.com", False),
    ],
)
def test_exact_origin_is_compared_byte_for_byte(origin, expected):
    assert allowed(listing(APP), origin) is expected


def test_idn_entry_matches_the_punycode_a_browser_sends():
    assert allowed(listing("https://bücher.de"), "https://xn--bcher-kva.de") is True


def test_ipv6_entry_matches():
    assert allowed(listing("http://[::1]:8000"), "http://[::1]:8000") is True


def test_null_matches_only_when_listed():
    assert allowed(listing("null"), "null") is True


def test_null_refused_when_not_listed():
    assert allowed(listing(APP, "https://*.example.com", "http://localhost:*"), "null") is False


def test_null_is_case_sensitive_on_the_request():
    assert allowed(listing("null"), "Null") is False


@pytest.mark.parametrize("origin", ["https://-.example.com", "https://" + "a" * 2000 + ".example.com"])
def test_allow_all_with_credentials_never_echoes_a_host_no_browser_sends(origin):
    decision = listing(allow_all_origins=True, allow_credentials=True).decide(origin, "/")
    assert (decision.allowed, dict(decision.headers)) == (False, {})


def test_allow_all_allows_any_origin():
    assert allowed(listing(allow_all_origins=True), "https://anything.example.net") is True


def test_nothing_listed_refuses():
    assert allowed(listing(), APP) is False


def test_missing_origin_is_refused_but_covered():
    decision = listing(APP).decide(None, "/")
    assert (decision.covered, decision.allowed, dict(decision.headers)) == (True, False, {})


def test_empty_origin_is_refused():
    assert allowed(listing(allow_all_origins=True), "") is False


def test_decision_names_policy_and_entry():
    snap = Snapshot([policy(entries=[("https://*.example.com", FOREVER)])])
    decision = snap.decide("https://a.example.com", "/")
    assert (decision.policy, decision.matched, decision.entry_id) == ("default", "https://*.example.com", 1)


def test_exact_entry_wins_over_wildcard_in_one_policy():
    snap = Snapshot([policy(entries=[("https://*.example.com", FOREVER), (APP, FOREVER)])])
    assert snap.decide(APP, "/").matched == APP


# --- expiry -----------------------------------------------------------------


def test_expired_entry_is_refused():
    snap = Snapshot([policy(entries=[(APP, time.time() - 1)])])
    assert allowed(snap, APP) is False


def test_unexpired_entry_is_allowed():
    snap = Snapshot([policy(entries=[(APP, time.time() + 60)])])
    assert allowed(snap, APP) is True


@pytest.mark.parametrize("text", [APP, "https://*.example.com", "http://localhost:*", "null"])
def test_entry_expires_inside_a_built_snapshot(monkeypatch, text):
    origin = {"https://*.example.com": "https://a.example.com", "http://localhost:*": "http://localhost:3000"}
    request_origin = origin.get(text, text)
    now = time.time()
    snap = Snapshot([policy(entries=[(text, now + 1)])])
    assert allowed(snap, request_origin) is True
    monkeypatch.setattr(snapshot_module, "time", SimpleNamespace(time=lambda: now + 1.001))
    assert allowed(snap, request_origin) is False


def test_expired_wildcard_falls_back_to_a_live_one():
    now = time.time()
    snap = Snapshot(
        [policy(entries=[("https://*.a.example.com", now - 1), ("https://*.example.com", FOREVER)])]
    )
    assert snap.decide("https://x.a.example.com", "/").matched == "https://*.example.com"


# --- which policy decides ----------------------------------------------------


def test_higher_priority_policy_decides():
    snap = Snapshot(
        [
            policy("low", [(APP, FOREVER)], priority=0),
            policy("high", [(APP, FOREVER)], priority=10, allow_credentials=True),
        ]
    )
    assert snap.decide(APP, "/").policy == "high"


def test_priority_ties_are_broken_by_name():
    snap = Snapshot([policy("beta", [(APP, FOREVER)]), policy("alpha", [(APP, FOREVER)])])
    assert snap.decide(APP, "/").policy == "alpha"


def test_policy_that_does_not_allow_passes_to_the_next():
    snap = Snapshot(
        [
            policy("high", [("https://other.example.com", FOREVER)], priority=10),
            policy("low", [(APP, FOREVER)], priority=0),
        ]
    )
    assert snap.decide(APP, "/").policy == "low"


def test_policy_not_covering_the_path_is_ignored():
    snap = Snapshot(
        [
            policy("api", [(APP, FOREVER)], url_regex="^/api/", priority=10),
            policy("default", [("https://other.example.com", FOREVER)]),
        ]
    )
    decision = snap.decide(APP, "/demo/echo/")
    assert (decision.covered, decision.allowed) == (True, False)


def test_policy_covering_the_path_decides():
    snap = Snapshot([policy("api", [(APP, FOREVER)], url_regex="^/api/")])
    assert snap.decide(APP, "/api/items/").policy == "api"


def test_url_regex_is_matched_at_the_start_of_the_path():
    snap = Snapshot([policy("api", [(APP, FOREVER)], url_regex="/api/")])
    assert (snap.decide(APP, "/api/x").allowed, snap.decide(APP, "/v2/api/x").covered) == (True, False)


def test_uncovered_path_is_not_covered():
    decision = Snapshot([policy("api", [(APP, FOREVER)], url_regex="^/api/")]).decide(APP, "/admin/")
    assert (decision.covered, decision.allowed, dict(decision.headers)) == (False, False, {})


def test_empty_snapshot_covers_nothing():
    assert Snapshot([]).decide(APP, "/").covered is False


# --- a policy that can allow nothing covers nothing -------------------------------------


def test_a_policy_without_entries_covers_nothing():
    snap = listing()
    assert (snap.decide(APP, "/").covered, snap.decide(None, "/").covered) == (False, False)


def test_a_policy_with_only_an_expired_entry_covers_nothing():
    snap = Snapshot([policy(entries=[(APP, time.time() - 1)])])
    assert (snap.decide(APP, "/").covered, snap.decide(None, "/").covered) == (False, False)


def test_a_policy_with_only_deny_entries_covers_nothing():
    snap = Snapshot([policy(denies=[(1, APP, FOREVER)])])
    assert (snap.decide(APP, "/").covered, snap.decide(None, "/").covered) == (False, False)


def test_allow_all_without_entries_covers():
    assert listing(allow_all_origins=True).decide(None, "/").covered is True


def test_a_policy_listing_only_null_it_refuses_covers_nothing():
    snap = Snapshot([policy(entries=[("null", FOREVER)], allow_credentials=True, refuse_null=True)])
    assert snap.decide("null", "/").covered is False


def test_a_policy_covers_until_its_last_entry_expires(monkeypatch):
    """Refusals and requests without Origin asked before the expiry are not remembered past it."""
    now = time.time()
    snap = Snapshot([policy(entries=[(APP, now + 30), ("https://b.example.com", now + 60)])])
    before = [snap.decide(o, "/").covered for o in ("https://evil.example.net", None)]
    monkeypatch.setattr(snapshot_module, "time", SimpleNamespace(time=lambda: now + 31))
    between = [snap.decide(o, "/").covered for o in ("https://evil.example.net", None)]
    monkeypatch.setattr(snapshot_module, "time", SimpleNamespace(time=lambda: now + 61))
    after = [snap.decide(o, "/").covered for o in ("https://evil.example.net", None)]
    assert (before, between, after) == ([True, True], [True, True], [False, False])


def test_a_policy_that_covers_nothing_leaves_the_path_to_the_next():
    snap = Snapshot([policy("empty", priority=10), policy("api", [(APP, FOREVER)], url_regex="^/api/")])
    assert (snap.decide(APP, "/api/x").policy, snap.decide(APP, "/other").covered) == ("api", False)


def test_an_empty_report_only_policy_reports_nothing():
    """Enforced as it stands it would cover nothing, so it would refuse nothing."""
    snap = Snapshot([policy("open", allow_all_origins=True), policy("allowlist", mode="report", priority=10)])
    assert snap.decide(APP, "/").would_refuse == ()


def test_a_report_only_policy_with_an_entry_reports():
    snap = Snapshot(
        [
            policy("open", allow_all_origins=True),
            policy("allowlist", [("https://b.example.com", FOREVER)], mode="report", priority=10),
        ]
    )
    assert snap.decide(APP, "/").would_refuse == ("allowlist",)


@pytest.mark.parametrize(
    ("entries", "removed", "added", "expected"),
    [
        ([], [], [], -FOREVER),
        ([(APP, FOREVER), ("https://b.example.com", 50.0)], [], [], FOREVER),
        ([(APP, FOREVER), ("https://b.example.com", 50.0)], [APP], [], 50.0),
        ([(APP, 70.0), ("https://b.example.com", 50.0)], [APP], [], 50.0),
        ([(APP, 70.0)], [APP], [("https://c.example.com", 60.0)], 60.0),
        ([(APP, 70.0)], [], [("https://*.example.com", FOREVER)], FOREVER),
        ([("https://*.example.com", 80.0), (APP, 70.0)], [], [], 80.0),
    ],
    ids=["empty", "forever", "forever-removed", "latest-removed", "replaced", "pattern-added", "pattern"],
)
def test_entry_table_lives_until_its_last_entry_expires(entries, removed, added, expected):
    built = EntryTable.build((i, text, exp) for i, (text, exp) in enumerate(entries, start=1))
    built.live_until()  # an all-expiring table counts its exact origins; the changed one reuses that
    changed = built.changed(
        [("exact", text) for text in removed],
        [(entry_key(text)[:2], (100 + i, text, exp)) for i, (text, exp) in enumerate(added)],
    )
    assert changed.live_until() == expected


# --- headers ----------------------------------------------------------------


def test_simple_request_headers():
    assert dict(listing(APP).decide(APP, "/").headers) == {"Access-Control-Allow-Origin": APP}


def test_credentials_echo_the_origin_and_allow_credentials():
    snap = listing(APP, allow_credentials=True)
    assert dict(snap.decide(APP, "/").headers) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
    }


def test_allow_all_without_credentials_answers_star():
    snap = listing(allow_all_origins=True)
    assert dict(snap.decide(APP, "/").headers) == {"Access-Control-Allow-Origin": "*"}


def test_listed_origin_in_allow_all_policy_answers_star():
    snap = listing(APP, allow_all_origins=True)
    assert dict(snap.decide(APP, "/").headers) == {"Access-Control-Allow-Origin": "*"}


def test_expose_headers():
    snap = listing(APP, expose_headers=["x-request-id", "x-total"])
    assert dict(snap.decide(APP, "/").headers) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Expose-Headers": "x-request-id, x-total",
    }


def test_preflight_headers():
    snap = listing(APP)
    assert dict(snap.decide(APP, "/", "OPTIONS", preflight=True).headers) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": DEFAULT_METHODS,
        "Access-Control-Allow-Headers": DEFAULT_HEADERS,
        "Access-Control-Max-Age": "7200",
    }


def test_preflight_without_max_age():
    snap = listing(APP, max_age=0)
    assert "Access-Control-Max-Age" not in snap.decide(APP, "/", "OPTIONS", preflight=True).headers


def test_private_network_preflight_allowed():
    snap = listing(APP, allow_private_network=True)
    headers = snap.decide(APP, "/", "OPTIONS", preflight=True, private_network=True).headers
    assert headers["Access-Control-Allow-Private-Network"] == "true"


def test_private_network_refused_by_policy():
    snap = listing(APP)
    headers = snap.decide(APP, "/", "OPTIONS", preflight=True, private_network=True).headers
    assert "Access-Control-Allow-Private-Network" not in headers


def test_private_network_only_on_a_preflight():
    snap = listing(APP, allow_private_network=True)
    headers = snap.decide(APP, "/", "GET", preflight=False, private_network=True).headers
    assert "Access-Control-Allow-Private-Network" not in headers


def test_private_network_only_when_asked():
    snap = listing(APP, allow_private_network=True)
    headers = snap.decide(APP, "/", "OPTIONS", preflight=True, private_network=False).headers
    assert "Access-Control-Allow-Private-Network" not in headers


# --- cost -------------------------------------------------------------------


def test_lookup_does_not_scan_the_entries():
    """Ten thousand wildcards: a linear scan per decision would take seconds."""
    count = 10_000
    texts = [f"https://*.site{i}.example.com" for i in range(count)] + [APP]
    snap = listing(*texts)
    origins = [f"https://a.b.site{i}.example.com" for i in range(0, count, 10)]
    start = time.perf_counter()
    for _ in range(2):
        for origin in origins:
            assert snap.decide(origin, "/").allowed
        assert not snap.decide("https://a.b.site.example.org", "/").allowed
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"{len(origins) * 2} decisions took {elapsed:.3f}s"


# --- remembered decisions -------------------------------------------------------------


def test_a_repeated_request_gets_the_remembered_decision():
    snap = listing(APP)
    assert snap.decide(APP, "/") is snap.decide(APP, "/")


def test_remembered_decisions_are_bounded(monkeypatch):
    monkeypatch.setattr(snapshot_module, "MEMO_SIZE", 8)
    snap = listing(APP)
    for i in range(100):
        snap.decide(f"https://h{i}.example.net", "/")
    assert len(snap._memo) <= 8


def test_an_allow_by_an_expiring_entry_is_not_remembered(monkeypatch):
    now = time.time()
    snap = Snapshot([policy(entries=[(APP, now + 60)])])
    assert snap.decide(APP, "/").allowed
    monkeypatch.setattr(snapshot_module, "time", SimpleNamespace(time=lambda: now + 61))
    assert not snap.decide(APP, "/").allowed
