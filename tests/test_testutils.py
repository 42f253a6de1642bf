"""corsadmin.testutils: what a host project's tests use to set the allow-list.

The middleware is built around a plain view (no URLconf); tests without the ``db``
fixture prove that no query is made (pytest-django refuses database access there).
"""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, SimpleTestCase

from corsadmin.middleware import CorsMiddleware, CsrfViewMiddleware
from corsadmin.models import AllowedOrigin
from corsadmin.refresh import holder
from corsadmin.testutils import override_allowed_origins, override_cors

from .cors_helpers import APP, DEFAULT_HEADERS, DEFAULT_METHODS, cors_headers

OTHER = "https://other.example.com"
PREFLIGHT = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT"}


def view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def async_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def get(origin: str, path: str = "/api/x/", method: str = "get", **extra: str) -> HttpResponse:
    request = getattr(RequestFactory(), method)(path, HTTP_ORIGIN=origin, **extra)
    return CorsMiddleware(view)(request)


async def aget(origin: str, path: str = "/api/x/") -> HttpResponse:
    request = RequestFactory().get(path, HTTP_ORIGIN=origin)
    return await CorsMiddleware(async_view)(request)


# --- what is served ---------------------------------------------------------------


def test_listed_origin_gets_exactly_its_header():
    with override_allowed_origins(APP):
        response = get(APP)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}
    assert response["Vary"] == "Origin"


def test_unlisted_origin_gets_no_header():
    with override_allowed_origins(APP):
        response = get(OTHER)
    assert cors_headers(response) == {}
    assert response["Vary"] == "Origin"


def test_preflight_answers_with_the_default_options():
    with override_allowed_origins(APP):
        response = get(APP, method="options", **PREFLIGHT)
    assert response.status_code == 200
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": DEFAULT_METHODS,
        "Access-Control-Allow-Headers": DEFAULT_HEADERS,
        "Access-Control-Max-Age": "7200",
    }


def test_policy_options_are_served():
    with override_cors(
        [APP],
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["x-token"],
        expose_headers=["x-request-id"],
        max_age=0,
    ):
        response = get(APP, method="options", **PREFLIGHT)
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "x-request-id",
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "x-token",
    }


def test_allow_all_origins_answers_a_star():
    with override_cors(allow_all_origins=True):
        response = get(OTHER)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": "*"}


def test_url_regex_limits_the_paths_covered():
    with override_cors([APP], url_regex=r"^/api/"):
        outside = get(APP, path="/other/")
        inside = get(APP, path="/api/x/")
    assert cors_headers(outside) == {}
    assert not outside.has_header("Vary")
    assert cors_headers(inside) == {"Access-Control-Allow-Origin": APP}


def test_origins_are_matched_in_canonical_form():
    with override_allowed_origins("HTTPS://App.Example.com:443"):
        response = get(APP)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}


def test_wildcard_entries_match_as_in_the_database():
    with override_allowed_origins("https://*.example.com"):
        below = get(APP)
        base = get("https://example.com")
    assert cors_headers(below) == {"Access-Control-Allow-Origin": APP}
    assert cors_headers(base) == {}


def test_a_single_string_is_one_origin():
    with override_cors(APP):
        response = get(APP)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}


def test_csrf_trusted_origins_pass_the_csrf_check():
    def csrf_response(origin: str) -> HttpResponse:
        token = "a" * 32  # a valid secret, as cookie and header: only the Origin check can refuse
        request = RequestFactory().post("/api/x/", HTTP_ORIGIN=origin, HTTP_X_CSRFTOKEN=token)
        request.COOKIES["csrftoken"] = token
        middleware = CsrfViewMiddleware(view)
        return middleware.process_view(request, view, (), {}) or view(request)

    with override_cors([APP], csrf_trusted=True):
        trusted = csrf_response(APP)
    with override_cors([APP]):
        untrusted = csrf_response(APP)
    assert trusted.status_code == 200
    assert untrusted.status_code == 403


# --- bad arguments: refused at once ---------------------------------------------------


@pytest.mark.parametrize("origin", ["app.example.com", "https://*.com", "javascript://x", ""])
def test_invalid_origin_is_refused(origin):
    with pytest.raises(ValueError):
        override_allowed_origins(origin)


def test_allow_all_with_credentials_is_refused():
    with pytest.raises(ValueError, match="allow_credentials"):
        override_cors(allow_all_origins=True, allow_credentials=True)


def test_invalid_url_regex_is_refused():
    with pytest.raises(Exception):  # noqa: B017  (re.error or RE2's error: either way, at once)
        override_cors([APP], url_regex="(")


# --- restoring the previous allow-list -------------------------------------------------


@pytest.fixture
def database_lists_other(db):
    AllowedOrigin.objects.create(origin=OTHER)


@pytest.mark.usefixtures("database_lists_other")
def test_database_allow_list_is_replaced_then_restored(django_assert_num_queries):
    with override_allowed_origins(APP), django_assert_num_queries(0):
        inside = (get(APP), get(OTHER))
    after = (get(APP), get(OTHER))
    assert [cors_headers(r) for r in inside] == [{"Access-Control-Allow-Origin": APP}, {}]
    assert [cors_headers(r) for r in after] == [{}, {"Access-Control-Allow-Origin": OTHER}]


@pytest.mark.usefixtures("database_lists_other")
def test_restored_after_an_exception():
    with pytest.raises(RuntimeError), override_allowed_origins(APP):
        raise RuntimeError("the test failed")
    assert cors_headers(get(OTHER)) == {"Access-Control-Allow-Origin": OTHER}
    assert cors_headers(get(APP)) == {}


def test_nested_overrides_restore_the_outer_one():
    with override_allowed_origins(APP):
        with override_allowed_origins(OTHER):
            inner = (get(APP), get(OTHER))
        outer = (get(APP), get(OTHER))
    assert [cors_headers(r) for r in inner] == [{}, {"Access-Control-Allow-Origin": OTHER}]
    assert [cors_headers(r) for r in outer] == [{"Access-Control-Allow-Origin": APP}, {}]


def test_one_decorator_entered_twice_restores_in_order():
    outer = override_allowed_origins(OTHER)
    twice = override_allowed_origins(APP)
    with outer, twice, twice:
        pass
    assert holder.override(None) is None  # nothing left behind


def test_a_reset_of_the_holder_keeps_the_override(settings):
    with override_allowed_origins(APP):
        settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 5}  # resets the holder
        response = get(APP)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}


# --- as a decorator -------------------------------------------------------------------


@override_allowed_origins(APP)
def test_decorates_a_sync_test():
    assert cors_headers(get(APP)) == {"Access-Control-Allow-Origin": APP}


@override_allowed_origins(APP)
async def test_decorates_an_async_test():
    response = await aget(APP)
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP}


async def test_async_path_as_a_context_manager():
    with override_cors([APP], url_regex=r"^/api/"):
        inside = await aget(APP)
        outside = await aget(APP, path="/other/")
    assert cors_headers(inside) == {"Access-Control-Allow-Origin": APP}
    assert cors_headers(outside) == {}


@override_allowed_origins(APP)
class DecoratedTestCase(SimpleTestCase):
    def test_decorates_a_test_case(self):
        assert cors_headers(get(APP)) == {"Access-Control-Allow-Origin": APP}


def test_the_decorator_is_undone_after_the_test():
    @override_allowed_origins(APP)
    def decorated():
        return get(APP)

    assert cors_headers(decorated()) == {"Access-Control-Allow-Origin": APP}
    assert holder.override(None) is None
