"""System checks, import-settings, and one list for CORS and CSRF."""

import io

import pytest
from django.core.checks import run_checks

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder
from corsadmin.settings_import import run as import_settings
from corsadmin.shadowing import paths_overlap

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


def database_check_messages(settings_values, settings):
    for name, value in settings_values.items():
        setattr(settings, name, value)
    return [m for m in run_checks(tags=["database"], databases=["default"]) if m.id == "corsadmin.W009"]


def imported_api_policy(**options):
    """The database policy of issue 19's site after `cors import-settings`."""
    Policy.objects.all().delete()
    values = {
        "url_regex": "^/api/.*$",
        "allow_credentials": True,
        "expose_headers": ["x-request-id"],
        "allow_headers": ["x-custom", "content-type"],
        "max_age": 86400,
    }
    policy = Policy.objects.create(name="default", **{**values, **options})
    AllowedOrigin.objects.create(policy=policy, origin="https://app.example.com")
    return policy


# Issue 19's site after import-settings: the regexes stay in settings.
REGEX_SETTINGS = {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"]}
KEPT_WITH_REGEXES = {
    **REGEX_SETTINGS,
    "CORS_URLS_REGEX": r"^/api/.*$",
    "CORS_ALLOW_CREDENTIALS": True,
    "CORS_EXPOSE_HEADERS": ["X-Request-Id"],
    "CORS_ALLOW_HEADERS": ["x-custom", "content-type"],
}


def test_settings_policy_shadowing_a_database_policy_warns(settings):
    """Issue 19: the old advice left the regexes with every option at its default."""
    imported_api_policy()
    [message] = database_check_messages(REGEX_SETTINGS, settings)
    assert message.msg == (
        "The CORS_* settings policy is tried before policy 'default' on the paths both cover, with "
        "other values of CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_ALLOW_CREDENTIALS: the origins "
        "the settings allow get the settings' answer there, never 'default''s (nor its deny entries)."
    )


def test_settings_kept_together_as_advised_do_not_warn(settings):
    imported_api_policy()
    assert database_check_messages(KEPT_WITH_REGEXES, settings) == []


def test_a_database_policy_tried_first_is_not_shadowed(settings):
    imported_api_policy(priority=1)
    assert database_check_messages(REGEX_SETTINGS, settings) == []


def test_a_database_policy_on_other_paths_is_not_shadowed(settings):
    imported_api_policy(url_regex="^/partner/")
    assert database_check_messages({**REGEX_SETTINGS, "CORS_URLS_REGEX": r"^/api/"}, settings) == []


def test_allow_all_in_settings_shadows_a_list_with_the_same_options(settings):
    imported_api_policy()
    [message] = database_check_messages({**KEPT_WITH_REGEXES, "CORS_ORIGIN_ALLOW_ALL": True}, settings)
    assert "other values of CORS_ORIGIN_ALLOW_ALL:" in message.msg


def test_a_database_policy_that_allows_nothing_is_not_shadowed(settings):
    """The migration-seeded `default` (no entries) under drop-in settings: nothing to shadow."""
    Policy.objects.all().delete()
    Policy.objects.create(name="default", url_regex="^/")
    assert database_check_messages({"CORS_ALLOWED_ORIGINS": ["https://app.example.com"]}, settings) == []


def test_no_shadowing_check_without_a_settings_policy(settings):
    imported_api_policy()
    assert database_check_messages({"CORS_ALLOW_CREDENTIALS": False}, settings) == []


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("^.*$", "^/api/", True),
        ("^/api/", "^/api/v2/", True),
        ("^/api/.*$", "^/api/", True),
        (r"^/api/", r"^/admin/", False),
        (r"^/api/", r"^/ap", True),
        (r"^/static/.+\.js$", r"^/", True),
        (r"^/a/", r"^/b/", False),
    ],
)
def test_paths_overlap(first, second, overlap):
    assert (paths_overlap(first, second), paths_overlap(second, first)) == (overlap, overlap)


def test_import_settings_advises_keeping_the_options_with_the_regexes(settings):
    for name, value in {**KEPT_WITH_REGEXES, "CORS_ALLOWED_ORIGINS": ["https://app.example.com"]}.items():
        setattr(settings, name, value)
    out = io.StringIO()
    import_settings(out)
    lines = out.getvalue().splitlines()
    assert "can be removed from settings.py: CORS_ALLOWED_ORIGINS" in lines[-4]
    assert lines[-3] == (
        "Keep in settings.py, together: CORS_ALLOWED_ORIGIN_REGEXES, CORS_URLS_REGEX, "
        "CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_ALLOW_CREDENTIALS"
    )


def test_import_settings_keeps_the_options_while_a_receiver_is_connected(settings):
    from corsadmin.signals import check_request_enabled

    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_ALLOW_CREDENTIALS = True

    def receiver(sender, request, **kwargs):
        return False

    check_request_enabled.connect(receiver)
    try:
        out = io.StringIO()
        import_settings(out)
    finally:
        check_request_enabled.disconnect(receiver)
    assert "can be removed from settings.py: CORS_ALLOWED_ORIGINS\n" in out.getvalue()
    assert "Keep in settings.py: CORS_ALLOW_CREDENTIALS\n" in out.getvalue()


def test_import_settings_names_old_aliases_as_they_are_spelled(settings):
    settings.CORS_ORIGIN_WHITELIST = ["https://app.example.com"]
    settings.CORS_ORIGIN_REGEX_WHITELIST = [r"^https://\w+\.example\.com$"]
    out = io.StringIO()
    import_settings(out)
    assert "can be removed from settings.py: CORS_ORIGIN_WHITELIST\n" in out.getvalue()
    assert "Keep in settings.py: CORS_ORIGIN_REGEX_WHITELIST\n" in out.getvalue()


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
