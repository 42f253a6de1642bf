"""Report-only policies: they never change a response, and record what they would refuse.

A decision table through the middleware's sync and async paths: the exact
``Access-Control-*`` headers and ``Vary`` (as if the report-only policy were not
there), and the would-be refusals counted in memory (origin, path prefix, policy).
Then the counts written, listed by ``/api/cors/blocked/`` and the admin.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from corsadmin.diagnosis import explain
from corsadmin.models import AllowedOrigin, Policy, RefusedOrigin
from corsadmin.telemetry import record_refusal, recorder

from .cors_helpers import cors_headers, vary
from .twin_requests import PATHS, pinned, send  # noqa: F401  (pinned is a fixture)

pytestmark = pytest.mark.django_db  # telemetry stays in memory: the autouse manual_telemetry

APP = "https://app.example.com"
EVIL = "https://evil.example.net"
STAR = {"Access-Control-Allow-Origin": "*"}


def strict(**fields) -> Policy:
    policy = Policy.objects.create(name="strict", url_regex="^/demo/", priority=10, mode="report", **fields)
    AllowedOrigin.objects.create(origin=APP, policy=policy)
    return policy


def allow_all_and_strict() -> None:
    """The move the walkthrough describes: allow-all today, an allow-list reporting beside it."""
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    strict()


def strict_alone() -> None:
    Policy.objects.filter(name="default").update(enabled=False)
    strict()


def strict_with_credentials_over_allow_all() -> None:
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    strict(allow_credentials=True, max_age=5)


def strict_with_an_exception() -> None:
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    AllowedOrigin.objects.create(origin="https://*.example.com", policy=strict())
    AllowedOrigin.objects.create(
        origin="https://user.example.com", effect="deny", policy=Policy.objects.get(name="strict")
    )


def strict_over_a_list() -> None:
    AllowedOrigin.objects.create(origin=APP)
    strict()


def strict_for_another_host() -> None:
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    strict(hosts=["api.example.com"])


# name: (set-up, origin, path, expected Access-Control-* headers, Vary: Origin?, would-be refusals recorded)
CASES = {
    "allowed by the enforcing policy, refused by the report-only one": (
        allow_all_and_strict,
        EVIL,
        "/demo/echo/",
        STAR,
        True,
        {(EVIL, "/demo/", "strict")},
    ),
    "allowed by both: nothing recorded": (allow_all_and_strict, APP, "/demo/echo/", STAR, True, set()),
    "outside the report-only policy's paths: nothing recorded": (
        allow_all_and_strict,
        EVIL,
        "/other/",
        STAR,
        True,
        set(),
    ),
    "a report-only policy alone adds no header and no Vary": (
        strict_alone,
        APP,
        "/demo/echo/",
        {},
        False,
        set(),
    ),
    "a report-only policy's options never reach the response": (
        strict_with_credentials_over_allow_all,
        APP,
        "/demo/echo/",
        STAR,
        True,
        set(),
    ),
    "an exception of the report-only policy counts as a would-be refusal": (
        strict_with_an_exception,
        "https://user.example.com",
        "/demo/echo/",
        STAR,
        True,
        {("https://user.example.com", "/demo/", "strict")},
    ),
    "a real refusal is an ordinary refusal, not a report": (
        strict_over_a_list,
        EVIL,
        "/demo/echo/",
        {},
        True,
        {(EVIL, "/demo/", "")},
    ),
    "a same-origin request is never a would-be refusal": (
        allow_all_and_strict,
        "http://testserver",
        "/demo/echo/",
        STAR,
        True,
        set(),
    ),
    "a report-only policy for another host records nothing": (
        strict_for_another_host,
        EVIL,
        "/demo/echo/",
        STAR,
        True,
        set(),
    ),
}


@pytest.mark.parametrize("twin", PATHS)
@pytest.mark.parametrize("name", list(CASES))
def test_decision_table(name, twin, pinned):  # noqa: F811
    setup, origin, path, expected, varies, recorded = CASES[name]
    setup()
    pinned()
    response = send(twin, origin, path)
    assert (cors_headers(response), "Origin" in vary(response), set(recorder.pending())) == (
        expected,
        varies,
        recorded,
    )


def test_a_report_only_preflight_changes_nothing(pinned):  # noqa: F811
    allow_all_and_strict()
    pinned()
    response = send("sync", EVIL, method="OPTIONS", headers={"Access-Control-Request-Method": "PUT"})
    assert cors_headers(response)["Access-Control-Allow-Origin"] == "*"
    assert set(recorder.pending()) == {(EVIL, "/demo/", "strict")}


def test_repeated_requests_are_counted_from_the_memo(pinned):  # noqa: F811
    allow_all_and_strict()
    pinned()
    for _ in range(3):
        send("sync", EVIL)
    assert recorder.pending()[(EVIL, "/demo/", "strict")][0] == 3


def test_no_query_on_the_request_path(pinned, django_assert_num_queries):  # noqa: F811
    allow_all_and_strict()
    pinned()
    with django_assert_num_queries(0):
        send("sync", EVIL)
        send("async", EVIL)


# --- written, listed --------------------------------------------------------------------


@pytest.fixture
def refusals(pinned):  # noqa: F811
    allow_all_and_strict()
    pinned()
    send("sync", EVIL)
    record_refusal(EVIL, "/api-only/x")  # an ordinary refusal beside it
    recorder.flush()


def test_the_flush_writes_report_rows_apart_from_refusals(refusals):
    rows = set(RefusedOrigin.objects.values_list("origin", "path_prefix", "report", "policy", "count"))
    assert rows == {(EVIL, "/demo/", True, "strict", 1), (EVIL, "/api-only/", False, "", 1)}


def test_blocked_lists_report_true_with_the_policy(refusals, admin_client):
    body = admin_client.get("/api/cors/blocked/").json()
    listed = {(row["origin"], row["path_prefix"], row["report"], row["policy"]) for row in body["results"]}
    assert listed == {(EVIL, "/demo/", True, "strict"), (EVIL, "/api-only/", False, None)}


@pytest.mark.parametrize(("flag", "expected"), [("true", {True}), ("false", {False})])
def test_blocked_filters_by_report(refusals, admin_client, flag, expected):
    body = admin_client.get(f"/api/cors/blocked/?report={flag}").json()
    assert {row["report"] for row in body["results"]} == expected


def test_blocked_refuses_a_bad_report_flag(refusals, admin_client):
    response = admin_client.get("/api/cors/blocked/?report=maybe")
    assert (response.status_code, response.json()) == (400, {"report": ["Give report=true or report=false."]})


def test_admin_lists_the_would_be_refusal_with_its_policy(refusals, admin_client):
    page = admin_client.get(reverse("admin:corsadmin_refusedorigin_changelist") + "?report__exact=1")
    text = page.content.decode()
    rows = text[text.index('id="result_list"') : text.index("</table>", text.index('id="result_list"'))]
    assert (rows.count("<tr"), "strict" in rows, "/demo/" in rows) == (2, True, True)  # a header and one row


def test_allowing_the_origin_in_the_report_policy_shows_it_allowed_now(refusals):
    from corsadmin.admin import allowed_now
    from corsadmin.loader import load_snapshot
    from corsadmin.refresh import holder

    row = RefusedOrigin.objects.get(report=True)
    assert allowed_now(row) is False
    AllowedOrigin.objects.create(origin=EVIL, policy=Policy.objects.get(name="strict"))
    snapshot = load_snapshot()
    holder.get = lambda: snapshot  # the pinned fixture restores it
    assert allowed_now(row) is True


def test_check_names_the_report_only_policy_that_would_refuse():
    allow_all_and_strict()
    result = explain(EVIL, "/demo/echo/")
    assert (result["allowed"], result["policy"], result["would_refuse"]) == (True, "default", ["strict"])
    assert "Report-only policy 'strict' would refuse it" in result["reason"]
