"""CSRF trust is scoped like CORS: an entry flagged ``csrf_trusted`` is trusted only for the
requests its policy covers (enabled, enforcing, its paths, its hosts), never past its deny
entries, through ``corsadmin.middleware.CsrfViewMiddleware`` and the API's session auth."""

from __future__ import annotations

import pytest
from django.middleware.csrf import _get_new_csrf_string

from corsadmin.models import AllowedOrigin, Policy

from .api_fixtures import make_user

pytestmark = pytest.mark.django_db

PARTNER = "https://partner.example.com"


@pytest.fixture
def csrf_client(client, settings):
    settings.ROOT_URLCONF = "tests.urls"
    client.handler.enforce_csrf_checks = True
    return client


def trusted_in(policy: Policy, origin: str = PARTNER) -> AllowedOrigin:
    return AllowedOrigin.objects.create(policy=policy, origin=origin, csrf_trusted=True)


def post(client, path: str, origin: str = PARTNER, host: str = "testserver") -> int:
    token = client.get("/token/", HTTP_HOST=host).json()["token"]
    response = client.post(path, HTTP_ORIGIN=origin, HTTP_X_CSRFTOKEN=token, HTTP_HOST=host)
    return response.status_code


def test_an_entry_is_trusted_on_its_policys_paths(csrf_client):
    trusted_in(Policy.objects.create(name="api", url_regex=r"^/api/"))
    assert post(csrf_client, "/api/protected/") == 201


def test_an_entry_is_not_trusted_outside_its_policys_paths(csrf_client):
    trusted_in(Policy.objects.create(name="api", url_regex=r"^/api/"))
    assert post(csrf_client, "/protected/") == 403


def test_an_entry_is_trusted_on_its_policys_host(csrf_client):
    trusted_in(Policy.objects.create(name="api", hosts=["api.example.com"]))
    assert post(csrf_client, "/protected/", host="api.example.com") == 201


def test_an_entry_is_not_trusted_on_another_host(csrf_client):
    trusted_in(Policy.objects.create(name="api", hosts=["api.example.com"]))
    assert post(csrf_client, "/protected/", host="www.example.com") == 403


def test_an_entry_of_a_wildcard_host_policy_is_trusted_below_it_only(csrf_client):
    trusted_in(Policy.objects.create(name="api", hosts=["*.example.com"]))
    verdicts = [post(csrf_client, "/protected/", host=h) for h in ("eu.example.com", "example.com")]
    assert verdicts == [201, 403]


def test_an_entry_of_a_disabled_policy_is_not_trusted(csrf_client):
    trusted_in(Policy.objects.create(name="off", enabled=False))
    assert post(csrf_client, "/protected/") == 403


def test_an_entry_of_a_report_only_policy_is_not_trusted(csrf_client):
    trusted_in(Policy.objects.create(name="trial", mode=Policy.REPORT))
    assert post(csrf_client, "/protected/") == 403


def test_a_deny_entry_of_the_same_policy_wins_over_a_trusted_wildcard(csrf_client):
    policy = Policy.objects.create(name="partners")
    trusted_in(policy, "https://*.example.com")
    AllowedOrigin.objects.create(policy=policy, origin=PARTNER, effect=AllowedOrigin.DENY)
    verdicts = [post(csrf_client, "/protected/", origin=o) for o in ("https://eu.example.com", PARTNER)]
    assert verdicts == [201, 403]


def test_a_policy_covering_the_path_trusts_where_another_does_not(csrf_client):
    trusted_in(Policy.objects.create(name="api", url_regex=r"^/api/"))
    trusted_in(Policy.objects.create(name="site", url_regex=r"^/"), "https://other.example.com")
    verdicts = [post(csrf_client, "/protected/", origin=o) for o in (PARTNER, "https://other.example.com")]
    assert verdicts == [403, 201]


def session_client(client):
    """A logged-in session allowed to add policies, its CSRF cookie set."""
    client.handler.enforce_csrf_checks = True
    client.force_login(make_user("operator", "add_policy", "view_policy"))
    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    return client, secret


def test_the_api_refuses_a_session_write_from_an_origin_trusted_for_other_paths(client):
    trusted_in(Policy.objects.create(name="demo", url_regex=r"^/demo/"))
    client, secret = session_client(client)
    response = client.post(
        "/api/cors/policies/", {"name": "sneaky"}, content_type="application/json",
        HTTP_ORIGIN=PARTNER, HTTP_X_CSRFTOKEN=secret,
    )  # fmt: skip
    assert (response.status_code, Policy.objects.filter(name="sneaky").exists()) == (403, False)


def test_the_api_refuses_a_session_write_from_an_origin_trusted_on_another_host(client):
    trusted_in(Policy.objects.create(name="api", hosts=["api.example.com"]))
    client, secret = session_client(client)
    response = client.post(
        "/api/cors/policies/", {"name": "sneaky"}, content_type="application/json",
        HTTP_ORIGIN=PARTNER, HTTP_X_CSRFTOKEN=secret, HTTP_HOST="www.example.com",
    )  # fmt: skip
    assert (response.status_code, Policy.objects.filter(name="sneaky").exists()) == (403, False)


def test_the_api_takes_a_session_write_from_an_origin_trusted_for_its_paths(client):
    trusted_in(Policy.objects.create(name="admin-api", url_regex=r"^/api/cors/"))
    client, secret = session_client(client)
    response = client.post(
        "/api/cors/policies/", {"name": "welcome"}, content_type="application/json",
        HTTP_ORIGIN=PARTNER, HTTP_X_CSRFTOKEN=secret,
    )  # fmt: skip
    assert response.status_code == 201
