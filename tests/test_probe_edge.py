"""A probe through an edge the test starts in front of the site (``corsadmin.edge``): each
disagreement with corsadmin's own decision named.

The site runs in pytest-django's live server; ``tests/edge_proxy.py`` stands in front of it as a
proxy adding a second ``Access-Control-Allow-Origin`` or dropping ``Vary``. The edges that answer
on their own (an error page, an answer cached for another origin) need no site behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from corsadmin import edge, probe
from corsadmin.models import AllowedOrigin, Policy
from tests.edge_proxy import EdgeProxy, Fixed, Headers

ORIGIN = "https://app.example.com"


@pytest.fixture
def probe_hosts(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 5.0}


@pytest.fixture
def allowed(db: Any) -> None:
    AllowedOrigin.objects.create(origin=ORIGIN, policy=Policy.objects.get(name="default"))


@pytest.fixture
def site(
    live_server: Any, probe_hosts: None
) -> Iterator[Callable[[Callable[[Headers], Headers]], EdgeProxy]]:
    """An edge in front of the live site, rewriting its answers' headers as told."""
    AllowedOrigin.objects.create(origin=ORIGIN, policy=Policy.objects.get(name="default"))
    started: list[EdgeProxy] = []

    def start(rewrite: Callable[[Headers], Headers]) -> EdgeProxy:
        started.append(EdgeProxy(live_server.url.removeprefix("http://"), rewrite))
        return started[-1]

    yield start
    for proxy in started:
        proxy.close()


def kinds(result: dict[str, Any]) -> list[str]:
    return [item["kind"] for item in result["disagreements"]]


def run(url: str, **asked: Any) -> dict[str, Any]:
    return edge.run(probe.question(url, ORIGIN, **asked))


def test_an_edge_that_passes_the_answer_through_agrees(site: Any) -> None:
    proxy = site(lambda headers: headers)
    result = run(proxy.url("/demo/echo/"))
    assert (result["expected"]["allowed"], result["response"]["status"], kinds(result)) == (True, 200, [])
    assert {name: verdict["allowed"] for name, verdict in result["engines"].items()} == {
        "chromium": True,
        "firefox": True,
        "webkit": True,
    }
    assert ["Access-Control-Allow-Origin", ORIGIN] in result["response"]["headers"]


def test_a_proxy_adding_a_second_allow_origin_is_named(site: Any) -> None:
    proxy = site(lambda headers: [*headers, ("Access-Control-Allow-Origin", ORIGIN)])
    result = run(proxy.url("/demo/echo/"))
    assert kinds(result) == ["duplicate-allow-origin"]
    assert result["response"]["headers"].count(["Access-Control-Allow-Origin", ORIGIN]) == 2
    assert "contains multiple values" in result["engines"]["chromium"]["message"]


def test_an_edge_dropping_vary_is_named(site: Any) -> None:
    proxy = site(lambda headers: [(k, v) for k, v in headers if k.lower() != "vary"])
    result = run(proxy.url("/demo/echo/"))
    assert kinds(result) == ["missing-vary"]


def test_an_edge_stripping_the_preflight_answer_is_named(site: Any) -> None:
    def strip(headers: Headers) -> Headers:
        return [(k, v) for k, v in headers if k.lower() != "access-control-allow-methods"]

    result = run(site(strip).url("/demo/echo/"), method="PUT", headers=["X-Token: 1"])
    assert kinds(result) == ["stripped-header"]
    assert "Access-Control-Allow-Methods" in result["disagreements"][0]["detail"]
    assert result["preflight"]["sent"][1:] == [
        ["Access-Control-Request-Method", "PUT"],
        ["Access-Control-Request-Headers", "x-token"],
    ]


def test_an_error_page_of_the_edge_without_cors_headers_is_named(probe_hosts: None, allowed: None) -> None:
    edge_error = Fixed(502, [("Server", "edge/1.0"), ("Content-Type", "text/html")])
    try:
        result = run(edge_error.url("/demo/echo/"))
    finally:
        edge_error.close()
    assert kinds(result) == ["error-without-cors"]
    assert "Server: edge/1.0" in result["disagreements"][0]["detail"]


def test_an_answer_cached_for_another_origin_is_named(probe_hosts: None, allowed: None) -> None:
    cached = Fixed(
        200,
        [("Access-Control-Allow-Origin", "https://other.example.com"), ("Vary", "Origin"), ("Age", "42")],
    )
    try:
        result = run(cached.url("/demo/echo/"))
    finally:
        cached.close()
    assert kinds(result) == ["cached-other-origin"]
    assert "Age: 42" in result["disagreements"][0]["detail"]


def test_no_answer_is_named_and_every_engine_refuses(probe_hosts: None, allowed: None) -> None:
    server = Fixed(200, [])
    port = server.port
    server.close()
    result = run(f"http://127.0.0.1:{port}/demo/echo/")
    assert kinds(result) == ["no-answer"]
    assert [verdict["allowed"] for verdict in result["engines"].values()] == [False, False, False]


def test_no_request_is_sent_when_the_preflight_lets_no_browser_through(
    probe_hosts: None, allowed: None
) -> None:
    refusing = Fixed(405, [])
    try:
        result = run(refusing.url("/demo/echo/"), method="DELETE")
    finally:
        refusing.close()
    assert (result["preflight"]["status"], result["response"], refusing.accepted) == (405, None, 1)
    assert "preflight-not-ok" in kinds(result)


def test_expected_is_null_for_a_host_this_site_does_not_serve(
    settings: Any, probe_hosts: None, db: Any
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    server = Fixed(200, [("Access-Control-Allow-Origin", "*")])
    try:
        result = run(server.url("/"))
    finally:
        server.close()
    assert (result["expected"], kinds(result)) == (None, [])


def test_expected_is_check_s_verdict_credentials_included(probe_hosts: None, allowed: None) -> None:
    """The default policy allows the origin without credentials: for credentials 'include',
    corsadmin's own answer is refused too (no Access-Control-Allow-Credentials), as check says."""
    edge_answer = Fixed(200, [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")])
    try:
        result = run(edge_answer.url("/demo/echo/"), credentials="include")
    finally:
        edge_answer.close()
    assert (result["expected"]["allowed"], kinds(result)) == (False, [])
    assert "Access-Control-Allow-Credentials" in result["engines"]["chromium"]["message"]
