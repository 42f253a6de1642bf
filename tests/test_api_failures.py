"""What failed authentications and failing services cost the API, in process.

Bad token keys are refused from memory (no query per attempt), a client past its budget
of failed authentications gets a 429 without a lookup, a cache that fails is left alone
for a back-off instead of being asked by every request, and a query that hangs is cut
at the deadline. The same with real servers: ``tests/test_hangs.py``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from corsadmin import deadlines
from corsadmin.api import auth_failures, throttles

API = "/api/cors/origins/"
LIMIT = 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, client, long_interval) -> Clock:
    client.get("/demo/echo/")  # the snapshot loaded: the requests below make only their own queries
    fake = Clock()
    monkeypatch.setattr(auth_failures.failures, "clock", fake)
    monkeypatch.setattr(throttles.CorsAdminThrottle, "breaker", throttles.Breaker(clock=fake))
    return fake


def garbage(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db
def test_a_refused_key_is_refused_again_without_a_query(clock, django_assert_num_queries):
    client = garbage("garbage")
    with django_assert_num_queries(1):
        assert client.get(API).status_code == 401
    with django_assert_num_queries(0):
        response = client.get(API)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})
    clock.now += auth_failures.BAD_KEY_TTL  # forgotten: looked up again
    with django_assert_num_queries(1):
        assert client.get(API).status_code == 401


@pytest.mark.django_db
def test_a_client_past_its_failure_budget_gets_a_429_without_a_lookup(
    clock, django_assert_num_queries, reader
):
    from .api_fixtures import token_client

    codes = [garbage(f"guess-{i}").get(API).status_code for i in range(LIMIT)]
    assert codes == [401] * LIMIT
    with django_assert_num_queries(0):
        response = garbage("guess-last").get(API)
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert token_client(reader).get(API).status_code == 429  # the address, whatever the key
    clock.now += auth_failures.WINDOW
    assert token_client(reader).get(API).status_code == 200


@pytest.mark.django_db
def test_the_failure_budget_is_per_client_address(clock):
    for i in range(LIMIT):
        garbage(f"guess-{i}").get(API, REMOTE_ADDR="10.0.0.1")
    assert garbage("guess").get(API, REMOTE_ADDR="10.0.0.1").status_code == 429
    assert garbage("guess").get(API, REMOTE_ADDR="10.0.0.2").status_code == 401


class CountingBrokenCache:
    calls = 0

    def add(self, *args: Any, **kwargs: Any) -> Any:
        CountingBrokenCache.calls += 1
        raise ConnectionError("cache hangs")

    get = set = incr = add


@pytest.mark.django_db
def test_a_failing_cache_is_left_alone_for_a_back_off(clock, monkeypatch, reader_client):
    monkeypatch.setattr(throttles.CorsAdminThrottle, "cache", property(lambda self: CountingBrokenCache()))
    CountingBrokenCache.calls = 0
    assert [reader_client.get(API).status_code for _ in range(5)] == [200] * 5
    assert CountingBrokenCache.calls == 1  # the first failure, then no call
    clock.now += throttles.BACKOFF
    assert [reader_client.get(API).status_code for _ in range(5)] == [200] * 5
    assert CountingBrokenCache.calls == 2  # one try after the back-off
    clock.now += throttles.BACKOFF  # failed again: the back-off doubled
    reader_client.get(API)
    assert CountingBrokenCache.calls == 2
    clock.now += throttles.BACKOFF
    reader_client.get(API)
    assert CountingBrokenCache.calls == 3


@pytest.mark.services
@pytest.mark.django_db
def test_a_query_that_hangs_is_cut_at_the_deadline():
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    start = time.monotonic()
    with pytest.raises(OperationalError), deadlines.deadline(0.5), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(20)")
    assert time.monotonic() - start < 5


# --- an exception nobody handled --------------------------------------------------------


@pytest.fixture
def failing_check(monkeypatch, reader):
    from corsadmin import diagnosis

    from .api_fixtures import token_client

    def explain(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the check")

    monkeypatch.setattr(diagnosis, "explain", explain)
    client = token_client(reader)
    client.raise_request_exception = False  # as a real server: answer, do not re-raise
    return client


CHECK = "/api/cors/check/?origin=https://app.example.com&path=/"


@pytest.mark.django_db
def test_an_unhandled_exception_in_an_api_view_answers_json_500_and_is_reported(failing_check, caplog):
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = failing_check.get(CHECK)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The server failed while answering this request; the error was logged for its "
        "administrators.",
        "code": "server_error",
    }
    [record] = [r for r in caplog.records if r.name == "django.request"]  # as Django reports a 500
    assert record.getMessage() == "Internal Server Error: /api/cors/check/"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug in the check"


class FailingMiddleware:
    """A bug of the site's own, in a middleware: it fails on every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise RuntimeError("a bug in a middleware")


@pytest.fixture
def failing_middleware(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_api_failures.FailingMiddleware"]
    return Client(raise_request_exception=False)


@pytest.mark.django_db
def test_an_exception_in_a_middleware_on_an_api_path_answers_json_500(failing_middleware):
    response = failing_middleware.get(CHECK)
    assert (response.status_code, response["Content-Type"]) == (500, "application/json")
    assert response.json() == {
        "detail": "The server failed while answering this request; the error was logged for its "
        "administrators.",
        "code": "server_error",
    }


@pytest.mark.django_db
def test_an_exception_in_a_middleware_elsewhere_gets_djangos_page(failing_middleware):
    response = failing_middleware.get("/demo/echo/")
    assert (response.status_code, response["Content-Type"]) == (500, "text/html; charset=utf-8")
    assert b"<h1>Server Error (500)</h1>" in response.content  # django.views.defaults.server_error
