"""What the admin writes (issue 21, items 7 and 8): text sent by clients with its control and
bidi characters made visible, one date format, and one status wording with the API and the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from corsadmin import telemetry
from corsadmin.models import AllowedOrigin, Policy, RefusedOrigin
from corsadmin.visible import one_line, visible, visible_text
from tests.test_cli import cors

pytestmark = pytest.mark.django_db

RLO = '<span class="corsadmin-escape" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202e</span>'
REFUSED = "/admin/corsadmin/refusedorigin/"
OVERVIEW = "/admin/corsadmin/allowedorigin/overview/"
EVIL = "https://evil.example"


# --- the filter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/api/v2/", "/api/v2/"),
        ("/\u202enimda/", "/\\u202enimda/"),  # RIGHT-TO-LEFT OVERRIDE
        ("/\u2066a\u2067b\u2068c\u2069/", "/\\u2066a\\u2067b\\u2068c\\u2069/"),  # the isolates
        ("/\u200ex\u200f/\u061c", "/\\u200ex\\u200f/\\u061c"),  # the marks
        ("/\u202a\u202b\u202c\u202d/", "/\\u202a\\u202b\\u202c\\u202d/"),  # embeddings, overrides
        ("/a\x00b\x1b[31m\x7f\x85\x9f/", "/a\\u0000b\\u001b[31m\\u007f\\u0085\\u009f/"),  # C0, DEL, C1
        ("/\u200b\ufeff\u2028\u2029/", "/\\u200b\\ufeff\\u2028\\u2029/"),  # zero-width, BOM, separators
        ("/\U000e0041/", "/\\U000e0041/"),  # a tag character (outside the BMP)
        ("/café/日本/", "/café/日本/"),  # letters are letters
    ],
)
def test_visible_text_escapes_control_and_bidi_characters(text, expected):
    assert visible_text(text) == expected


def test_visible_marks_each_escape_and_escapes_html():
    assert visible("<b>/\u202e/") == f"&lt;b&gt;/{RLO}/"


def test_one_line_puts_the_whole_text_in_the_title():
    assert one_line('/\u202ea"/', "corsadmin-path") == (
        f'<span class="corsadmin-path" title="/\\u202ea&quot;/">/{RLO}a&quot;/</span>'
    )


# --- real refused rows in the admin ---------------------------------------------------------


@pytest.fixture
def bidi_refusal(client):
    """A request whose path displays as ``/admin/`` when its U+202E is applied, refused and recorded."""
    policy = Policy.objects.create(name="site", url_regex="^/", priority=5)
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=policy)
    client.get("/\u202enimda/x", HTTP_ORIGIN=EVIL)
    telemetry.recorder.flush()
    row = RefusedOrigin.objects.get(origin=EVIL)
    assert row.path_prefix == "/\u202enimda/"  # stored as sent: the admin must escape it
    return row


@pytest.mark.parametrize("page", ["list", "detail", "overview", "history"])
def test_a_refused_path_shows_its_bidi_character_as_an_escape(admin_client, bidi_refusal, page):
    url = {
        "list": REFUSED,
        "detail": f"{REFUSED}{bidi_refusal.pk}/change/",
        "overview": OVERVIEW,
        "history": f"{REFUSED}{bidi_refusal.pk}/history/",
    }[page]
    # Hidden inputs (the overview's Allow form) carry the raw path back: never displayed.
    html = re.sub(r'<input type="hidden"[^>]*>', "", admin_client.get(url).content.decode())
    assert ("\u202e" in html, f"/{RLO}nimda/" in html or "/\\u202enimda/" in html) == (False, True)


def test_the_refused_path_filter_shows_the_escape(admin_client, bidi_refusal):
    response = admin_client.get(REFUSED)
    [path_filter] = [
        f
        for f in response.context["cl"].filter_specs
        if getattr(f, "parameter_name", "") == "path_prefix__exact"
    ]
    assert path_filter.lookup_choices == [("/\u202enimda/", "/\\u202enimda/")]


def test_the_refused_path_filter_filters_by_the_raw_path(admin_client, bidi_refusal):
    RefusedOrigin.objects.create(
        origin=EVIL, path_prefix="/api/", count=1, first_seen=timezone.now(), last_seen=timezone.now()
    )
    response = admin_client.get(REFUSED, {"path_prefix__exact": "/\u202enimda/"})
    assert [row.pk for row in response.context["cl"].result_list] == [bidi_refusal.pk]


# --- one date format --------------------------------------------------------------------------

SEEN = datetime(2026, 12, 7, 1, 27, tzinfo=UTC)


def test_the_overview_and_the_refused_list_show_one_date_format(admin_client):
    RefusedOrigin.objects.create(origin=EVIL, path_prefix="/api/", count=3, first_seen=SEEN, last_seen=SEEN)
    overview = admin_client.get(OVERVIEW).content.decode()
    listing = admin_client.get(REFUSED).content.decode()
    assert ("<td>Dec. 7, 2026, 1:27 a.m.</td>" in overview, ">Dec. 7, 2026, 1:27 a.m.</span>" in listing) == (
        True,
        True,
    )


def test_the_origin_list_shows_the_expiry_in_the_admin_format(admin_client):
    AllowedOrigin.objects.create(origin="https://app.example.com", expires_at=SEEN + timedelta(days=400))
    html = admin_client.get("/admin/corsadmin/allowedorigin/").content.decode()
    assert '<span class="corsadmin-line">until Jan. 11, 2028, 1:27 a.m.</span>' in html


# --- one status wording -------------------------------------------------------------------------


@pytest.fixture
def deny_entry():
    return AllowedOrigin.objects.create(
        origin="https://blocked.example.com",
        effect=AllowedOrigin.DENY,
        expires_at=timezone.now() + timedelta(days=2),
    )


def test_admin_api_and_cli_say_the_same_status(admin_client, deny_entry):
    from django.contrib import admin

    admin_words = admin.site._registry[AllowedOrigin].status(deny_entry)
    api_words = admin_client.get(f"/api/cors/origins/{deny_entry.pk}/").json()["status"]
    cli_line = next(line for line in cors("list").splitlines() if "blocked.example.com" in line)
    assert (admin_words.split("</span>")[0], api_words, "deny: expires soon" in cli_line) == (
        '<span class="corsadmin-line">deny: expires soon',
        "deny: expires soon",
        True,
    )
