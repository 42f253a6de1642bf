"""The admin and corsadmin's API are not readable cross-origin with credentials, unless opted in."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
PROTECTED = ["/admin/login/", "/admin/", API + "policies/", API + "check/"]


@pytest.fixture
def credentials_everywhere(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_FLUSH": "manual"}
    Policy.objects.filter(name="default").update(allow_credentials=True)
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()


@pytest.mark.parametrize("path", PROTECTED)
def test_credentialed_request_to_the_admin_or_api_gets_no_cors_headers(client, credentials_everywhere, path):
    response = client.get(path, HTTP_ORIGIN=APP)
    assert [h for h in response.headers if h.lower().startswith("access-control-")] == []
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize("path", PROTECTED)
def test_credentialed_preflight_to_the_admin_or_api_gets_no_cors_headers(
    client, credentials_everywhere, path
):
    response = client.options(path, HTTP_ORIGIN=APP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 200
    assert [h for h in response.headers if h.lower().startswith("access-control-")] == []


def test_the_rest_of_the_site_keeps_its_credentialed_cors_headers(client, credentials_everywhere):
    response = client.get("/demo/echo/", HTTP_ORIGIN=APP)
    assert (response["Access-Control-Allow-Origin"], response["Access-Control-Allow-Credentials"]) == (
        APP,
        "true",
    )


def test_a_policy_without_credentials_still_answers_on_the_admin(client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_FLUSH": "manual"}
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    response = client.get("/admin/login/", HTTP_ORIGIN=APP)
    assert response["Access-Control-Allow-Origin"] == APP
    assert not response.has_header("Access-Control-Allow-Credentials")


def test_the_operator_can_opt_in(client, credentials_everywhere, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_CREDENTIALS_ON_ADMIN": True}
    response = client.get("/admin/login/", HTTP_ORIGIN=APP)
    assert (response["Access-Control-Allow-Origin"], response["Access-Control-Allow-Credentials"]) == (
        APP,
        "true",
    )


def test_opting_in_is_a_system_check_warning(settings):
    assert "corsadmin.W006" not in [m.id for m in run_checks()]
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_CREDENTIALS_ON_ADMIN": True}
    assert "corsadmin.W006" in [m.id for m in run_checks()]


def test_check_explains_the_refusal_like_the_middleware(credentials_everywhere, reader_client):
    result = reader_client.get(API + "check/", {"origin": APP, "path": "/admin/"}).json()
    assert (result["allowed"], result["headers"]) == (False, {})
    assert result["reason"].startswith(
        "Policy 'default' allows 'https://app.example.com' with credentials, but '/admin/' is the admin"
    )


def test_check_explains_the_metrics_refusal(credentials_everywhere, reader_client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_CREDENTIALS_ON_ADMIN": True}
    result = reader_client.get(API + "check/", {"origin": APP, "path": "/metrics/"}).json()
    assert (result["allowed"], result["headers"]) == (False, {})
    assert result["reason"] == (
        "Policy 'default' allows 'https://app.example.com' with credentials, but '/metrics/' is "
        "corsadmin's metrics, which no other site may read with the user's cookies, whatever "
        "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] says."
    )
