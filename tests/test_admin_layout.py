"""Every corsadmin admin page fits a 1280×800 screen (issue 21, item 2), in real Chromium.

The data is realistic-long: origins of about 60 characters, long refused paths (some with bidi
controls), long policy notes and host lists, dozens of entries. It is written once for the
module (outside any test transaction, removed at the end), served by Django's live-server
thread, and each page is opened once, logged in, at 1280×800; each test asserts on one page:

- the document is no wider than the viewport, and no box scrolls sideways (the changelist's
  ``.results``, a textarea...): what is off-screen is not seen;
- no origin cell wraps: an origin is one line, cut with an ellipsis, whole on hover.

A failure names the widths seen and the elements that stick out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.browser.chromium import launch

WIDTH, HEIGHT = 1280, 800
SHOTS = os.environ.get("CORSADMIN_LAYOUT_SHOTS")  # a directory: each page as the test saw it
# The rows are the module fixture's, committed outside the tests' transactions; the mark makes
# pytest-django set up the test database (it sets up only those that collected tests ask for).
pytestmark = pytest.mark.django_db

# What the page says about its width: the document's, the boxes that scroll sideways, the
# elements past the right edge, and the origin cells that take more than one line.
MEASURE = """() => {
  const doc = document.documentElement;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string'
       ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const all = [...document.querySelectorAll('body *')];
  const scrolling = all.filter((el) => {
    const style = getComputedStyle(el);
    return ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
  }).map((el) => describe(el) + ' ' + el.scrollWidth + '>' + el.clientWidth);
  const past = all.filter((el) => el.getBoundingClientRect().right > innerWidth + 1)
    .map((el) => describe(el) + ' right=' + Math.round(el.getBoundingClientRect().right)).slice(0, 6);
  const origins = [...document.querySelectorAll(
    'td.field-origin, th.field-origin, .corsadmin-origin, .corsadmin-path')];
  const wrapped = origins.filter((cell) => {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    const tops = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      tops.push(...[...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.top));
    }
    return tops.length > 0 && Math.max(...tops) - Math.min(...tops) > 4;
  }).map((cell) => cell.textContent.trim().slice(0, 40));
  return {
    scrollWidth: doc.scrollWidth, innerWidth: innerWidth, scrolling: scrolling, past: past,
    origins: origins.length, wrapped: wrapped,
    styled: !!document.querySelector('link[href*="admin/css"]'),
  };
}"""


def long_origin(i: int) -> str:
    """About 60 characters, each different."""
    return f"https://customer-portal-{i:02d}.eu-west-1.partner-company-example.com"


def long_path(i: int) -> str:
    return f"/api/v2/partners/acme-corporation-international-{i:02d}/webhooks/events/delivery/"


NOTE = (
    "Requested by the partner integrations team for the quarterly reconciliation export; "
    "ticket OPS-4711. Ask Jo Müller (platform) before removing: the nightly job breaks silently. "
) * 3
BIDI_PATH = "/\u202enimda/\u2066x\u2069/\u200e"


def make_data() -> dict[str, Any]:
    """The module's rows, committed; returns the keys the pages need."""
    from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from corsadmin.models import AllowedOrigin, OriginUsage, Policy, RefusedOrigin

    now = timezone.now()
    user = get_user_model().objects.create_superuser("layout-admin", "layout@example.com", "x")
    policies = [
        Policy.objects.create(
            name=f"partner-integrations-eu-west-{i}",
            url_regex=rf"^/api/v2/partners/(?P<tenant>[a-z0-9-]+)/webhooks/{i}/",
            hosts=[f"api-{i}.eu-west-1.partner-company-example.com", "*.internal.example-company.com"],
            priority=10 + i,
            allow_credentials=True,
            expose_headers=["x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"],
            note=NOTE,
        )
        for i in range(4)
    ]
    entries = []
    for i in range(48):
        entries.append(
            AllowedOrigin.objects.create(
                origin=long_origin(i),
                policy=policies[i % 4],
                effect=AllowedOrigin.DENY if i % 11 == 5 else AllowedOrigin.ALLOW,
                enabled=i % 13 != 7,
                expires_at=now + timedelta(days=2 + i % 3) if i % 5 == 0 else None,
                csrf_trusted=i % 6 == 1,
                note=NOTE,
            )
        )
    OriginUsage.objects.bulk_create(
        OriginUsage(origin=entry, hits=1234567 + i, last_seen=now - timedelta(days=45 * (i % 2)))
        for i, entry in enumerate(entries)
    )
    refused = [
        RefusedOrigin(
            origin=long_origin(100 + i),
            path_prefix=long_path(i) if i else BIDI_PATH,
            report=i % 4 == 1,
            policy=policies[i % 4].name if i % 4 == 1 else "",
            count=98765 + i,
            first_seen=now - timedelta(days=3),
            last_seen=now - timedelta(minutes=i),
        )
        for i in range(30)
    ]
    RefusedOrigin.objects.bulk_create(refused)
    origin_type = ContentType.objects.get_for_model(AllowedOrigin)
    for entry in entries[:3]:
        LogEntry.objects.create(
            user=user,
            content_type=origin_type,
            object_id=str(entry.pk),
            object_repr=entry.origin,
            action_flag=ADDITION,
            change_message='[{"added": {}}]',
        )
        LogEntry.objects.create(
            user=user,
            content_type=origin_type,
            object_id=str(entry.pk),
            object_repr=entry.origin,
            action_flag=CHANGE,
            change_message='[{"changed": {"fields": ["Note", "Expires at"]}}]',
        )
    return {
        "user": user,
        "policy": policies[0].pk,
        "entry": entries[0].pk,
        "deny": next(entry.pk for entry in entries if entry.effect == AllowedOrigin.DENY),
        "refused": RefusedOrigin.objects.get(path_prefix=BIDI_PATH).pk,
    }


def remove_data(user: Any, generation: dict[str, int]) -> None:
    from django.contrib.admin.models import LogEntry

    from corsadmin.models import AllowedOrigin, Generation, Policy, RefusedOrigin, Tombstone

    LogEntry.objects.filter(user=user).delete()
    AllowedOrigin.objects.filter(origin__contains="partner-company-example.com").delete()
    Policy.objects.filter(name__startswith="partner-integrations-").delete()
    RefusedOrigin.objects.filter(origin__contains="partner-company-example.com").delete()
    user.delete()
    # And the generation these writes moved, with their tombstones: the next test starts from
    # the seeded generation, as after a transactional test.
    Tombstone.objects.filter(generation__gt=generation["value"]).delete()
    Generation.objects.filter(pk=1).update(**generation)


def pages(keys: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import urlencode

    check = urlencode({"origin": long_origin(100), "path": long_path(0), "method": "PUT"})
    return {
        "index": "/admin/",
        "app-index": "/admin/corsadmin/",
        "refused-origins": "/admin/corsadmin/refusedorigin/",
        "refused-origin": f"/admin/corsadmin/refusedorigin/{keys['refused']}/change/",
        "origins": "/admin/corsadmin/allowedorigin/",
        "origin-form": f"/admin/corsadmin/allowedorigin/{keys['entry']}/change/",
        "origin-history": f"/admin/corsadmin/allowedorigin/{keys['entry']}/history/",
        "origin-add": "/admin/corsadmin/allowedorigin/add/",
        "origin-delete": f"/admin/corsadmin/allowedorigin/{keys['deny']}/delete/",  # says what it allows
        "policies": "/admin/corsadmin/policy/",
        "policy-form": f"/admin/corsadmin/policy/{keys['policy']}/change/",
        "policy-add": "/admin/corsadmin/policy/add/",
        "check": "/admin/corsadmin/allowedorigin/check/?" + check,
        "overview": "/admin/corsadmin/allowedorigin/overview/",
    }


PAGES = list(pages({"refused": 0, "entry": 0, "deny": 0, "policy": 0}))


@pytest.fixture(scope="module")
def measured(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, dict[str, Any]]]:
    """Each page's measurements, taken once: one server, one browser."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.db import connections
    from django.test import Client
    from django.test.testcases import LiveServerThread
    from playwright.sync_api import sync_playwright

    from corsadmin.models import Generation

    with django_db_blocker.unblock():
        generation = Generation.objects.values("value", "pruned").get(pk=1)
        keys = make_data()
        client = Client()
        client.force_login(keys["user"])
        session = client.cookies["sessionid"].value
        shared = {
            alias: conn
            for alias, conn in ((a, connections[a]) for a in connections)
            if conn.vendor == "sqlite" and conn.is_in_memory_db()
        }
        for conn in shared.values():
            conn.inc_thread_sharing()
        server = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override=shared, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        try:
            if server.error:
                raise server.error
            base = f"http://127.0.0.1:{server.port}"
            playwright = sync_playwright().start()
            try:
                browser = launch(playwright)
                context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
                context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
                page = context.new_page()
                page.set_default_timeout(15000)
                results = {}
                for name, path in pages(keys).items():
                    response = page.goto(base + path)
                    if SHOTS:
                        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)
                    results[name] = {
                        "status": response.status if response else None,
                        **page.evaluate(MEASURE),
                    }
                browser.close()
            finally:
                playwright.stop()
            yield results
        finally:
            server.terminate()
            for conn in shared.values():
                conn.dec_thread_sharing()
            remove_data(keys["user"], generation)


@pytest.mark.parametrize("name", PAGES)
def test_page_fits_1280_pixels(measured: dict[str, dict[str, Any]], name: str) -> None:
    seen = measured[name]
    assert (seen["status"], seen["styled"]) == (200, True), seen
    fits = seen["scrollWidth"] <= seen["innerWidth"] and not seen["scrolling"]
    assert fits, (
        f"{name}: document {seen['scrollWidth']} px in a {seen['innerWidth']} px viewport; "
        f"scrolling boxes {seen['scrolling']}; past the edge {seen['past']}"
    )


@pytest.mark.parametrize("name", PAGES)
def test_origins_never_wrap(measured: dict[str, dict[str, Any]], name: str) -> None:
    assert measured[name]["wrapped"] == [], f"{name}: {measured[name]['origins']} origin cells"
