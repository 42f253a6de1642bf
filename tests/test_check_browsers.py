"""check asks as a browser does (issue 24): credentials, per-engine verdicts, the fix, a host Django
refuses, a pasted console message, in the API, the command line and the admin alike."""

from __future__ import annotations

import json

import pytest

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.cli_runner import run_cors

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
CHECK = API + "check/"
ADMIN_CHECK = "/admin/corsadmin/allowedorigin/check/"
URL = "https://testserver/demo/echo/"
CR = f"Access to fetch at '{URL}' from origin '{APP}' has been blocked by CORS policy: "


@pytest.fixture
def listed(db):
    AllowedOrigin.objects.create(origin=APP)  # in `default` (^/, no credentials)


def get(client, **query):
    response = client.get(CHECK, {"path": "/demo/echo/", **query})
    assert response.status_code == 200, response.content
    return response.json()


def test_credentials_include_is_refused_without_allow_credentials(listed, reader_client):
    result = get(reader_client, origin=APP, credentials="include")
    assert (result["allowed"], result["middleware_allows"], result["credentials"]) == (False, True, "include")
    assert result["engines"]["chromium"] == {
        "allowed": False,
        "message": CR + "The value of the 'Access-Control-Allow-Credentials' header in the response is '' "
        "which must be 'true' when the request's credentials mode is 'include'.",
        "warnings": [],
        "preflight_cached_seconds": None,
    }
    assert "does not allow credentials" in result["reason"]


def test_the_fix_for_credentials_sets_allow_credentials(listed, reader_client):
    result = get(reader_client, origin=APP, credentials="include")
    assert result["fix"] == [
        {
            "action": "change_policy",
            "policy": "default",
            "origin": None,
            "set": {"allow_credentials": True},
            "text": "Change policy 'default': allow_credentials = true.",
        }
    ]


def test_credentials_include_is_allowed_with_allow_credentials(listed, reader_client):
    Policy.objects.filter(name="default").update(allow_credentials=True)
    result = get(reader_client, origin=APP, credentials="include")
    assert result["allowed"] is True
    assert [v["allowed"] for v in result["engines"].values()] == [True, True, True]
    assert result["fix"] == []


def test_same_origin_credentials_need_no_allow_credentials(listed, reader_client):
    assert get(reader_client, origin=APP)["allowed"] is True
    assert get(reader_client, origin=APP, credentials="omit")["allowed"] is True


def test_an_allow_all_policy_never_gets_star_with_credentials_as_its_fix(reader_client):
    Policy.objects.create(name="public", url_regex="^/demo/", allow_all_origins=True, priority=5)
    result = get(reader_client, origin=APP, credentials="include")
    assert result["allowed"] is False
    assert result["engines"]["webkit"]["message"].startswith(
        "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true."
    )
    add_policy, add_origin = result["fix"]
    assert add_policy["action"] == "add_policy"
    assert add_policy["set"]["allow_credentials"] is True
    assert "allow_all_origins" not in add_policy["set"]
    assert (add_policy["set"]["priority"], add_policy["set"]["url_regex"]) == (6, "^/demo/")
    assert (add_origin["action"], add_origin["policy"], add_origin["origin"]) == (
        "add_origin",
        "public-credentials",
        APP,
    )


def test_an_unlisted_origin_with_credentials_gets_both_steps(reader_client):
    AllowedOrigin.objects.create(origin="https://other.example.com")
    result = get(reader_client, origin=APP, credentials="include")
    assert [(s["action"], s["policy"], s["origin"], s["set"]) for s in result["fix"]] == [
        ("add_origin", "default", APP, None),
        ("change_policy", "default", None, {"allow_credentials": True}),
    ]


def test_a_lower_case_patch_is_refused_as_browsers_do(listed, reader_client):
    result = get(reader_client, origin=APP, method="patch")
    assert (result["allowed"], result["middleware_allows"], result["method"]) == (False, True, "PATCH")
    assert result["engines"]["chromium"]["message"] == (
        CR + "Method patch is not allowed by Access-Control-Allow-Methods in preflight response."
    )
    assert result["fix"][0]["action"] == "change_page"
    assert "method: 'PATCH'" in result["fix"][0]["text"]


def test_an_upper_case_patch_is_allowed(listed, reader_client):
    assert get(reader_client, origin=APP, method="PATCH")["allowed"] is True


def test_authorization_under_a_star_differs_per_engine(reader_client):
    Policy.objects.filter(name="default").update(allow_headers=["*"])
    AllowedOrigin.objects.create(origin=APP)
    result = get(reader_client, origin=APP, request_headers="Authorization")
    verdicts = {name: v["allowed"] for name, v in result["engines"].items()}
    assert verdicts == {"chromium": True, "firefox": True, "webkit": False}
    assert result["allowed"] is False
    assert result["fix"][0]["set"] == {"allow_headers": ["*", "authorization"]}


def test_max_age_caps_are_reported(listed, reader_client):
    Policy.objects.filter(name="default").update(max_age=86400)
    result = get(reader_client, origin=APP, method="PUT")
    assert result["allowed"] is True
    cached = {name: v["preflight_cached_seconds"] for name, v in result["engines"].items()}
    assert cached == {"chromium": 7200, "firefox": 86400, "webkit": 600}
    assert result["engines"]["webkit"]["warnings"] == [
        "Access-Control-Max-Age 86400 is above WebKit's cap: it repeats the preflight after 600 seconds."
    ]


def test_a_host_django_refuses_is_a_400_not_allowed(listed, reader_client, settings):
    settings.ALLOWED_HOSTS = ["testserver", "api.example.com"]
    result = get(reader_client, origin=APP, host="evil.example.net")
    assert (result["allowed"], result["status"], result["host"]) == (False, 400, "evil.example.net")
    assert result["reason"].startswith("Django refuses the host 'evil.example.net' (ALLOWED_HOSTS)")
    assert result["engines"]["chromium"] == {
        "allowed": False,
        "message": "Failed to load resource: the server responded with a status of 400 (Bad Request)",
        "warnings": [],
        "preflight_cached_seconds": None,
    }
    assert result["fix"][0]["action"] == "change_settings"


def test_an_allowed_host_is_no_400(listed, reader_client, settings):
    settings.ALLOWED_HOSTS = ["testserver", ".example.com"]
    result = get(reader_client, origin=APP, host="api.example.com:8443")
    assert (result["allowed"], result["status"]) == (True, None)


@pytest.mark.parametrize("value", ["always", "INCLUDE", ""])
def test_a_bad_credentials_value_is_a_400(reader_client, value):
    response = reader_client.get(CHECK, {"origin": APP, "credentials": value})
    assert response.status_code == 400
    assert list(response.json()) == ["credentials"]


# --- a pasted console message ------------------------------------------------------------

CHROMIUM_MESSAGE = (
    "Access to fetch at 'https://api.example.com/demo/echo/?x=1' from origin 'https://app.example.com' has "
    "been blocked by CORS policy: The value of the 'Access-Control-Allow-Credentials' header in the response "
    "is '' which must be 'true' when the request's credentials mode is 'include'."
)


def test_a_console_message_fills_the_question(listed, reader_client, settings):
    settings.ALLOWED_HOSTS = ["testserver", "api.example.com"]
    result = get(reader_client, message=CHROMIUM_MESSAGE)
    assert (result["origin"], result["path"], result["host"], result["credentials"]) == (
        APP,
        "/demo/echo/",
        "api.example.com",
        "include",
    )
    assert result["console"] == {
        "engine": "chromium",
        "failed": "allow-credentials",
        "explanation": "The Chromium message says the fetch sent credentials and the response did not say "
        "Access-Control-Allow-Credentials: true.",
    }
    assert result["fix"][0]["set"] == {"allow_credentials": True}


def test_a_message_from_firefox_needs_the_origin(listed, reader_client):
    message = (
        "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
        "https://testserver/demo/echo/. (Reason: Did not find method in CORS header "
        "‘Access-Control-Allow-Methods’)."
    )
    response = reader_client.get(CHECK, {"message": message})
    assert response.status_code == 400
    assert response.json() == {
        "message": ["The message names no origin (Firefox never does): give the origin too."]
    }
    assert get(reader_client, message=message, origin=APP, method="patch")["allowed"] is False


def test_a_message_corsadmin_now_allows_points_elsewhere(listed, reader_client):
    message = (
        "Origin https://app.example.com is not allowed by Access-Control-Allow-Origin. Status code: 200\n"
        "Fetch API cannot load https://testserver/demo/echo/ due to access control checks."
    )
    result = get(reader_client, message=message)
    assert result["allowed"] is True
    assert result["console"]["engine"] == "webkit"
    assert "came from elsewhere: a proxy, CDN or gateway" in result["console"]["explanation"]


def test_an_unreadable_message_is_a_400(reader_client):
    response = reader_client.get(CHECK, {"message": "TypeError: Failed to fetch"})
    assert response.status_code == 400
    assert list(response.json()) == ["message"]


def test_origin_or_message_is_required(reader_client):
    response = reader_client.get(CHECK, {"path": "/"})
    assert (response.status_code, response.json()) == (400, {"origin": ["This field is required."]})


def test_a_url_fills_path_and_host(listed, reader_client):
    result = get(reader_client, origin=APP, url="http://testserver:8000/demo/echo/?a=b")
    assert (result["path"], result["host"], result["url"]) == (
        "/demo/echo/",
        "testserver",
        "http://testserver:8000/demo/echo/?a=b",
    )


def test_a_bad_url_is_a_400(reader_client):
    response = reader_client.get(CHECK, {"origin": APP, "url": "/demo/echo/"})
    assert (response.status_code, list(response.json())) == (400, ["url"])


# --- the command line ----------------------------------------------------------------------


def test_cli_bare_credentials_flag_means_include(listed):
    ran = run_cors("check", APP, "--path", "/demo/echo/", "--credentials")
    assert ran.returncode == 1
    assert "creds:    include" in ran.stdout
    assert "chromium: refused: " + CR in ran.stdout
    assert "fix:      Change policy 'default': allow_credentials = true." in ran.stdout


def test_cli_credentials_json(listed):
    ran = run_cors("check", APP, "--path", "/demo/echo/", "--credentials", "omit", "--json")
    assert ran.returncode == 0
    result = json.loads(ran.stdout)
    assert (result["credentials"], result["engines"]["firefox"]["allowed"]) == ("omit", True)


def test_cli_bad_credentials_is_one_line_and_exit_2(listed):
    ran = run_cors("check", APP, "--credentials", "always")
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert len(ran.stderr.strip().splitlines()) == 1
    assert "credentials" in ran.stderr


def test_cli_url_fills_path_and_host(listed, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    ran = run_cors("check", APP, "--url", "https://elsewhere.example/demo/echo/", "--json")
    result = json.loads(ran.stdout)
    assert (ran.returncode, result["path"], result["status"]) == (1, "/demo/echo/", 400)


# --- the admin -----------------------------------------------------------------------------


def test_admin_check_has_a_per_engine_table_and_the_fix(listed, admin_client):
    response = admin_client.get(
        ADMIN_CHECK, {"origin": APP, "path": "/demo/echo/", "credentials": "include", "message": ""}
    )
    html = response.content.decode()
    assert '<h2 class="refused">' in html
    assert '<tr id="check-engine-chromium">' in html
    assert "which must be &#x27;true&#x27; when the request&#x27;s credentials mode is" in html
    assert "Change policy &#x27;default&#x27;: allow_credentials = true." in html
    assert 'id="check-edit-policy"' in html


def test_admin_check_reads_a_pasted_message(listed, admin_client, settings):
    settings.ALLOWED_HOSTS = ["testserver", "api.example.com"]
    response = admin_client.get(ADMIN_CHECK, {"origin": "", "message": CHROMIUM_MESSAGE})
    result = response.context["result"]
    assert (result["origin"], result["path"], result["credentials"]) == (APP, "/demo/echo/", "include")
    assert 'id="check-console"' in response.content.decode()


def test_admin_check_an_unreadable_message_is_a_form_error(admin_client):
    response = admin_client.get(ADMIN_CHECK, {"origin": "", "message": "something else"})
    assert response.context["result"] is None
    assert response.context["form"].errors["message"][0].startswith("This is no CORS message")


def test_admin_check_a_bad_credentials_value_is_a_form_error(admin_client):
    response = admin_client.get(ADMIN_CHECK, {"origin": APP, "credentials": "always"})
    assert response.context["result"] is None
    assert list(response.context["form"].errors) == ["credentials"]
