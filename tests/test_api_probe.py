"""``POST /api/cors/probe/``: its own permission, bad input as field errors (nothing sent), and
the probe's answer (``corsadmin.edge``) against a loopback server the test starts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api_fixtures import API, make_user, token_client
from tests.edge_proxy import Fixed

pytestmark = pytest.mark.django_db

PROBE = API + "probe/"
ORIGIN = "https://app.example.com"


@pytest.fixture
def probe_hosts(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 2.0}


@pytest.fixture
def server() -> Iterator[Fixed]:
    fixed = Fixed(200, [("Access-Control-Allow-Origin", "*")])
    yield fixed
    fixed.close()


@pytest.fixture
def prober_client(db: Any) -> APIClient:
    return token_client(make_user("prober", "probe_edge", "view_allowedorigin"))


def test_anonymous_is_asked_to_authenticate(anon_client: APIClient, probe_hosts: None, server: Fixed) -> None:
    response = anon_client.post(PROBE, {"url": server.url(), "origin": ORIGIN}, format="json")
    assert (response.status_code, response["WWW-Authenticate"], server.accepted) == (401, "Token", 0)


def test_reading_the_allow_list_is_not_enough(
    reader_client: APIClient, probe_hosts: None, server: Fixed
) -> None:
    response = reader_client.post(PROBE, {"url": server.url(), "origin": ORIGIN}, format="json")
    assert (response.status_code, server.accepted) == (403, 0)


def test_the_probe_permission_alone_is_not_enough(probe_hosts: None, server: Fixed) -> None:
    client = token_client(make_user("blind", "probe_edge"))
    response = client.post(PROBE, {"url": server.url(), "origin": ORIGIN}, format="json")
    assert (response.status_code, server.accepted) == (403, 0)


def test_a_host_outside_the_setting_is_a_400_and_nothing_is_sent(
    prober_client: APIClient, probe_hosts: None, server: Fixed
) -> None:
    response = prober_client.post(
        PROBE, {"url": server.url(host="localhost"), "origin": ORIGIN}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    assert server.accepted == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"origin": ORIGIN}, ["url"]),
        ({"url": "gopher://127.0.0.1/", "origin": ORIGIN}, ["url"]),
        ({"url": "http://127.0.0.1/", "origin": "not an origin"}, ["origin"]),
        ({"url": "http://127.0.0.1/", "origin": ORIGIN, "headers": "X-A"}, ["headers"]),
        (
            {"url": "http://127.0.0.1/", "origin": ORIGIN, "headers": ["Origin: https://x.example"]},
            ["headers"],
        ),
        ({"url": "http://127.0.0.1/", "origin": ORIGIN, "credentials": "yes"}, ["credentials"]),
        ({"url": "http://127.0.0.1/", "origin": ORIGIN, "method": "CONNECT"}, ["method"]),
    ],
)
def test_bad_input_is_a_400_with_field_errors(
    prober_client: APIClient, probe_hosts: None, body: dict[str, Any], fields: list[str]
) -> None:
    response = prober_client.post(PROBE, body, format="json")
    assert (response.status_code, sorted(response.json())) == (400, fields)


def test_a_body_that_is_no_object_is_a_400(prober_client: APIClient) -> None:
    response = prober_client.post(PROBE, ["http://127.0.0.1/"], format="json")
    assert response.status_code == 400


def test_the_answer_names_both_exchanges_engines_expected_and_disagreements(
    prober_client: APIClient, probe_hosts: None, server: Fixed
) -> None:
    body = {"url": server.url("/x/"), "origin": ORIGIN, "method": "put", "headers": ["X-Token: 1"]}
    response = prober_client.post(PROBE, body, format="json")
    assert response.status_code == 200
    result = response.json()
    assert sorted(result) == [
        "credentials",
        "disagreements",
        "engines",
        "expected",
        "headers",
        "method",
        "origin",
        "preflight",
        "response",
        "url",
    ]
    assert (result["method"], result["preflight"]["method"], result["response"]["method"]) == (
        "PUT",
        "OPTIONS",
        "PUT",
    )
    assert sorted(result["engines"]) == ["chromium", "firefox", "webkit"]
    assert result["expected"]["allowed"] is False  # no entry: corsadmin refuses, the edge says '*'
    assert {d["kind"] for d in result["disagreements"]} == {"added-header"}
    assert server.accepted == 2


def test_a_hanging_host_is_a_200_with_the_timeout_said(prober_client: APIClient, settings: Any) -> None:
    from tests.proxy import Proxy

    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 0.3}
    hanging = Proxy("127.0.0.1", 9)
    hanging.hang()
    try:
        response = prober_client.post(
            PROBE, {"url": f"http://127.0.0.1:{hanging.port}/", "origin": ORIGIN}, format="json"
        )
    finally:
        hanging.close()
    assert response.status_code == 200
    assert response.json()["response"]["error"] == {"code": "timeout", "detail": "No answer within 0.3 s."}
    assert [d["kind"] for d in response.json()["disagreements"]] == ["no-answer"]


def test_probe_is_in_the_schema(anon_client: APIClient) -> None:
    schema = anon_client.get(API + "schema/?format=json").json()
    operation = schema["paths"]["/api/cors/probe/"]["post"]
    assert sorted(operation["responses"]) == ["200", "400", "401", "403", "429"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert sorted(body["properties"]) == ["credentials", "headers", "method", "origin", "url"]
