"""System checks, import-settings, and one list for CORS and CSRF."""

import io

import pytest
from django.core.checks import run_checks

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder
from corsadmin.settings_import import run as import_settings

pytestmark = pytest.mark.django_db


def check_ids(settings_overrides, settings):
    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    return {message.id for message in run_checks(tags=["security"])}


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"CORS_ALLOW_METHODS": "GET"}, "corsadmin.E001"),
        ({"CORS_ALLOW_CREDENTIALS": "yes"}, "corsadmin.E002"),
        ({"CORS_PREFLIGHT_MAX_AGE": -1}, "corsadmin.E003"),
        ({"CORS_URLS_REGEX": 42}, "corsadmin.E004"),
        ({"CORS_ALLOWED_ORIGINS": "https://a.example.com"}, "corsadmin.E005"),
        ({"CORS_ALLOWED_ORIGINS": ["a.example.com"]}, "corsadmin.E006"),
        ({"CORS_ALLOWED_ORIGINS": ["https://a.example.com/"]}, "corsadmin.E007"),
        ({"CORS_ALLOWED_ORIGIN_REGEXES": "^x$"}, "corsadmin.E008"),
        ({"CORS_ALLOWED_ORIGIN_REGEXES": ["("]}, "corsadmin.E009"),
        ({"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://(\w+)\.\1\.com$"]}, "corsadmin.W005"),
        ({"CORSADMIN": {"REFRESH_INTERVAL": 0}}, "corsadmin.E010"),
        ({"CORSADMIN": {"CACHE_ALIAS": "nope"}}, "corsadmin.E011"),
        ({"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOW_CREDENTIALS": True}, "corsadmin.E012"),
        (
            {"CORS_ALLOWED_ORIGINS": ["https://a.example.com"], "CORS_ALLOW_CREDENTIALS": True},
            "corsadmin.W003",
        ),
        (
            {
                "CORS_ALLOWED_ORIGINS": ["http://a.example.com"],
                "CORS_ALLOW_CREDENTIALS": True,
                "SESSION_COOKIE_SAMESITE": "None",
            },
            "corsadmin.W004",
        ),
    ],
)
def test_settings_check(overrides, expected, settings):
    assert expected in check_ids(overrides, settings)


def test_clean_settings_pass_the_checks(settings):
    assert check_ids({"CORS_ALLOWED_ORIGINS": ["https://a.example.com"]}, settings) == set()


def test_middleware_after_common_middleware_warns(settings):
    middleware = [m for m in settings.MIDDLEWARE if m != "corsadmin.middleware.CorsMiddleware"]
    middleware.append("corsadmin.middleware.CorsMiddleware")
    assert "corsadmin.W002" in check_ids({"MIDDLEWARE": middleware}, settings)


def test_both_cors_middlewares_is_an_error(settings):
    middleware = ["corsheaders.middleware.CorsMiddleware", *settings.MIDDLEWARE]
    assert "corsadmin.E013" in check_ids({"MIDDLEWARE": middleware}, settings)


def test_import_settings_copies_origins_and_options(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://App.example.com", "http://localhost:3000"]
    settings.CORS_ALLOW_CREDENTIALS = True
    settings.CORS_EXPOSE_HEADERS = ["X-Request-Id"]
    out = io.StringIO()
    assert import_settings(out) == 6  # url_regex, credentials, expose, max_age, two origins
    policy = Policy.objects.get(name="default")
    assert sorted(policy.origins.values_list("origin", flat=True)) == [
        "http://localhost:3000",
        "https://app.example.com",
    ]
    assert policy.allow_credentials is True
    assert policy.expose_headers == ["x-request-id"]
    assert policy.max_age == 86400
    assert "can be removed from settings.py: CORS_ALLOWED_ORIGINS" in out.getvalue()


def test_import_settings_is_idempotent(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    import_settings(io.StringIO())
    out = io.StringIO()
    assert import_settings(out) == 0
    assert "Nothing to change" in out.getvalue()
    assert AllowedOrigin.objects.count() == 1


def test_import_settings_dry_run_changes_nothing(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    out = io.StringIO()
    import_settings(out, dry_run=True)
    assert "would add https://app.example.com" in out.getvalue()
    assert AllowedOrigin.objects.count() == 0


def test_import_settings_refuses_all_origins_with_credentials(settings):
    from corsadmin.settings_import import ImportProblem

    settings.CORS_ALLOW_ALL_ORIGINS = True
    settings.CORS_ALLOW_CREDENTIALS = True
    with pytest.raises(ImportProblem):
        import_settings(io.StringIO())
    assert Policy.objects.get(name="default").allow_all_origins is False


def test_import_settings_reports_regexes_it_keeps(settings):
    settings.CORS_ALLOWED_ORIGIN_REGEXES = [r"^https://\w+\.example\.com$"]
    out = io.StringIO()
    import_settings(out)
    assert "regexes stay in settings" in out.getvalue()


@pytest.fixture
def csrf_client(client, settings):
    settings.ROOT_URLCONF = "tests.urls"
    client.handler.enforce_csrf_checks = True
    return client


def post_with_token(client, origin):
    token = client.get("/token/").json()["token"]
    return client.post("/protected/", HTTP_ORIGIN=origin, HTTP_X_CSRFTOKEN=token)


def test_csrf_refuses_an_unlisted_cross_origin_post(csrf_client):
    response = post_with_token(csrf_client, "https://partner.example.com")
    assert response.status_code == 403


def test_csrf_refuses_a_cors_only_origin(csrf_client):
    AllowedOrigin.objects.create(origin="https://partner.example.com", csrf_trusted=False)
    response = post_with_token(csrf_client, "https://partner.example.com")
    assert response.status_code == 403


def test_csrf_trusts_a_flagged_origin(csrf_client):
    AllowedOrigin.objects.create(origin="https://partner.example.com", csrf_trusted=True)
    response = post_with_token(csrf_client, "https://partner.example.com")
    assert response.status_code == 201


def test_csrf_trusts_a_flagged_wildcard(csrf_client):
    AllowedOrigin.objects.create(origin="https://*.partner.example.com", csrf_trusted=True)
    assert post_with_token(csrf_client, "https://eu.partner.example.com").status_code == 201
    assert post_with_token(csrf_client, "https://partner.example.com").status_code == 403


def test_csrf_trusted_origins_setting_still_works(csrf_client, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://partner.example.com"]
    assert post_with_token(csrf_client, "https://partner.example.com").status_code == 201


def test_csrf_still_needs_the_token(csrf_client):
    AllowedOrigin.objects.create(origin="https://partner.example.com", csrf_trusted=True)
    response = csrf_client.post("/protected/", HTTP_ORIGIN="https://partner.example.com")
    assert response.status_code == 403


def test_csrf_ignores_a_disabled_flagged_origin(csrf_client):
    AllowedOrigin.objects.create(origin="https://partner.example.com", csrf_trusted=True, enabled=False)
    assert post_with_token(csrf_client, "https://partner.example.com").status_code == 403


def test_csrf_never_trusts_null_even_when_a_row_says_so(csrf_client):
    entry = AllowedOrigin.objects.create(origin="null")
    AllowedOrigin.objects.filter(pk=entry.pk).update(csrf_trusted=True)  # around validation
    holder.reset()
    assert post_with_token(csrf_client, "null").status_code == 403


def deploy_check_ids(settings_changes: dict, settings) -> list[str]:
    for name, value in settings_changes.items():
        setattr(settings, name, value)
    # What manage.py check --deploy reports: the messages not silenced.
    return [m.id for m in run_checks(include_deployment_checks=True) if not m.is_silenced()]


def test_deploy_check_has_no_csrf_false_positive_with_corsadmins_csrf_middleware(settings):
    ids = deploy_check_ids({}, settings)
    assert ("security.W003" in ids, "corsadmin.W007" in ids) == (False, False)


def test_deploy_check_warns_when_no_csrf_middleware_is_installed(settings):
    middleware = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    assert "corsadmin.W007" in deploy_check_ids({"MIDDLEWARE": middleware}, settings)
