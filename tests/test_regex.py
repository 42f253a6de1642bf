"""Policy path regexes: refused when unsafe, run in RE2 (linear time, '$' only at the end)."""

from __future__ import annotations

import time

import pytest
from django.db.models import QuerySet

from corsadmin.documents import export_document
from corsadmin.models import Policy
from corsadmin.refresh import holder
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"


def without_time(document: dict) -> dict:
    return {**document, "exported_at": None}


@pytest.mark.parametrize(
    ("url_regex", "message"),
    [
        ("a{99999999999}", "Not a valid regular expression: the repetition number is too large"),
        ("^/api/(", "Not a valid regular expression: missing ), unterminated subpattern at position 6."),
        ("^/(?=api)", "Not a regular expression corsadmin can run safely (invalid perl operator: (?=)."),
        (r"^/(a)\1", "Not a regular expression corsadmin can run safely (invalid escape sequence: \\1)."),
        ("^/a{1001}", "Not a regular expression corsadmin can run safely (invalid repetition size: {1001})."),
    ],
)
def test_api_refuses_an_unsafe_url_regex(full_client, url_regex, message):
    before = without_time(export_document())
    response = full_client.post(API + "policies/", {"name": "p", "url_regex": url_regex}, format="json")
    assert response.status_code == 400
    assert response.json()["url_regex"][0].startswith(message)
    assert without_time(export_document()) == before


def test_backtracking_pattern_answers_in_linear_time(client):
    Policy.objects.create(name="r", url_regex="^/r/(a+)+$", priority=9)
    holder.reset()
    start = time.perf_counter()
    response = client.get("/r/" + "a" * 5000 + "!", HTTP_ORIGIN=ORIGIN)
    assert time.perf_counter() - start < 1
    assert response.status_code == 404


def test_dollar_does_not_match_before_a_trailing_newline(client):
    Policy.objects.all().delete()
    Policy.objects.create(name="echo", url_regex="^/demo/echo/$", allow_all_origins=True)
    holder.reset()
    covered = client.get("/demo/echo/", HTTP_ORIGIN=ORIGIN)
    newline = client.get("/demo/echo/%0a", HTTP_ORIGIN=ORIGIN)
    assert covered["Access-Control-Allow-Origin"] == "*"
    assert not newline.has_header("Access-Control-Allow-Origin")
    assert not newline.has_header("Vary")


def test_a_stored_pattern_re2_refuses_still_runs_with_a_log_line(client, caplog):
    policy = Policy.objects.create(name="legacy", url_regex="^/demo/", allow_all_origins=True, priority=9)
    QuerySet(Policy).filter(pk=policy.pk).update(url_regex="^/demo/(?=echo)")  # around validation
    holder.reset()
    response = client.get("/demo/echo/", HTTP_ORIGIN=ORIGIN)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "url_regex '^/demo/(?=echo)' runs in Python's backtracking re, not RE2" in caplog.text
