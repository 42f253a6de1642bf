"""Take the README's screenshots of the admin, at 1280 px (a laptop screen).

    python docs/screenshots.py        # writes the PNGs below into docs/

- ``overview.png`` and ``overview-charts.png``: the overview page and its charts;
- ``admin-refused-origins.png``: the refused origins list (one-line origins and paths, a
  bidi control shown as an escape, allowed-now / dismissed / report-only in "status");
- ``admin-origins.png``: the allowed origins list (status, expiry and CSRF in "status");
- ``admin-policy-form.png``: a policy's change form with its origins;
- ``admin-preview-form.png``, ``admin-preview.png``, ``admin-preview-confirm.png``: an origin's
  change form with its Preview button, the preview of disabling it, and the question its Save
  asks (the README's "Before you change it").

``python docs/screenshots.py preview`` takes only the last three.

A throw-away site (SQLite in a temporary directory) with demo data: three policies, a
few dozen origins (some of about 60 characters, with long notes), 30 days of hourly counts,
refused origins (long paths among them) and admin history. It is served by
``manage.py runserver`` on a free port and photographed by headless Chromium
(``/usr/bin/chromium``, through Playwright) at 1280×800.
"""

from __future__ import annotations

import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "screenshots-only"


def demo_data() -> None:
    from datetime import UTC, datetime, timedelta

    from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from corsadmin.models import (
        AllowedOrigin,
        OriginHour,
        OriginTraffic,
        OriginUsage,
        Policy,
        PolicyHour,
        RefusedOrigin,
    )

    rng = random.Random(15)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    admin = User.objects.get(username="admin")
    alice = User.objects.create_user("alice", is_staff=True)
    api = Policy.objects.create(
        name="api",
        url_regex="^/api/",
        priority=10,
        allow_credentials=True,
        hosts=["api.example.com", "api.eu-west-1.example.com"],
        note="The public API: partners' single-page apps call it with cookies. Every entry needs a "
        "ticket; expiring entries are for pilots and are reviewed on Mondays.",
    )
    widgets = Policy.objects.create(name="widgets", url_regex="^/widgets/", priority=5)
    default = Policy.objects.get(name="default")
    origins = []
    for i, (name, policy) in enumerate(
        [
            ("app", api),
            ("admin", api),
            ("partner", api),
            ("shop", widgets),
            ("blog", widgets),
            ("docs", default),
        ]
        + [(f"tenant{i}", api) for i in range(12)]
    ):
        expires = now + timedelta(days=2 + i) if name in ("partner", "tenant3") else None
        origins.append(
            AllowedOrigin.objects.create(
                origin=f"https://{name}.example.com", policy=policy, expires_at=expires
            )
        )
    for i, (name, effect) in enumerate(
        [
            ("customer-portal-eu-west-1.partner-company-example", "allow"),
            ("reporting-dashboard-staging.analytics-vendor-example", "allow"),
            ("legacy-intranet-gateway.acquired-subsidiary-example", "deny"),
        ]
    ):
        origins.append(
            AllowedOrigin.objects.create(
                origin=f"https://{name}.com",
                policy=api,
                effect=effect,
                csrf_trusted=i == 0,
                expires_at=now + timedelta(days=40) if i == 1 else None,
                note="Requested by the partner integrations team for the quarterly reconciliation "
                "export (ticket OPS-4711); ask Jo before removing it.",
            )
        )
    for entry in origins[:10]:
        hits = rng.randint(200, 90000)
        seen = now - timedelta(minutes=rng.randint(1, 600))
        OriginUsage.objects.create(origin=entry, hits=hits, last_seen=seen)
        OriginHour.objects.create(origin=entry, hour=hour, count=hits // 700)
    OriginUsage.objects.create(origin=origins[10], hits=12, last_seen=now - timedelta(days=44))
    rows = []
    for h in range(30 * 24):
        at = hour - timedelta(hours=h)
        daily = 0.5 + 0.5 * math.sin((at.hour - 9) / 24 * 2 * math.pi)
        for name, scale, refusals in (("api", 900, 40), ("widgets", 300, 8), ("default", 60, 15)):
            allowed = int(scale * daily * rng.uniform(0.8, 1.2))
            refused = int(refusals * rng.uniform(0.2, 1.4) * (3 if h in (5, 6, 7) and name == "api" else 1))
            rows.append(PolicyHour(policy=name, hour=at, allowed=allowed, refused=refused))
    PolicyHour.objects.bulk_create(rows)
    for i, (origin, prefix, count) in enumerate(
        [
            ("https://tenant-new.example.com", "/api/", 1843),
            ("https://evil.example.net", "/api/", 412),
            ("http://localhost:3000", "/api/", 97),
            ("https://staging.shop.example.com", "/widgets/", 55),
            ("https://customer-portal-eu-central-1.partner-company-example.com", "/partner-webhooks/", 31),
            ("https://evil.example.net", "/\u202enimda/", 12),  # a bidi override: shown as an escape
            ("https://reporting-dashboard-preview.analytics-vendor-example.com", "/api/", 9),
        ]
    ):
        RefusedOrigin.objects.create(
            origin=origin,
            path_prefix=prefix,
            count=count,
            first_seen=now - timedelta(days=3),
            last_seen=now - timedelta(minutes=7 * i),
        )
    # Traffic per concrete origin (what a preview decides again), the last 7 days.
    for origin, prefix, host, path, per_day, minutes in [
        ("https://app.example.com", "/api/", "api.example.com", "/api/v2/orders", 5200, 3),
        ("https://app.example.com", "/api/", "api.eu-west-1.example.com", "/api/v2/orders", 800, 41),
        ("https://admin.example.com", "/api/", "api.example.com", "/api/v2/users", 310, 12),
        ("https://shop.example.com", "/widgets/", "www.example.com", "/widgets/cart.js", 2900, 1),
        ("https://tenant-new.example.com", "/api/", "api.example.com", "/api/v2/orders", 260, 9),
    ]:
        for day in range(7):
            OriginTraffic.objects.create(
                origin=origin,
                path_prefix=prefix,
                host=host,
                path=path,
                day=(now - timedelta(days=day)).date(),
                requests=int(per_day * rng.uniform(0.8, 1.2)),
                last_seen=now - timedelta(days=day, minutes=minutes),
            )
    origin_type = ContentType.objects.get_for_model(AllowedOrigin)
    for user, entry, flag, message in [
        (admin, origins[0], ADDITION, '[{"added": {}}]'),
        (alice, origins[2], CHANGE, '[{"changed": {"fields": ["Expires at"]}}]'),
        (alice, origins[5], ADDITION, '[{"added": {}}]'),
    ]:
        LogEntry.objects.create(
            user=user,
            content_type=origin_type,
            object_id=str(entry.pk),
            object_repr=entry.origin,
            action_flag=flag,
            change_message=message,
        )


def shoot(page: Any, base: str) -> None:
    page.goto(base + "/admin/corsadmin/allowedorigin/overview/")
    page.screenshot(path=str(ROOT / "docs" / "overview.png"), full_page=True)
    page.locator("#overview-charts").screenshot(path=str(ROOT / "docs" / "overview-charts.png"))
    for name, path in [
        ("admin-refused-origins", "/admin/corsadmin/refusedorigin/"),
        ("admin-origins", "/admin/corsadmin/allowedorigin/?policy__id__exact=2"),
        ("admin-policy-form", "/admin/corsadmin/policy/2/change/"),
    ]:
        page.goto(base + path)
        # The policy form: its fields and the first origins (the rest are more of the same).
        height = min(2400, page.evaluate("document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": 1280, "height": height}
        page.screenshot(path=str(ROOT / "docs" / f"{name}.png"), full_page=True, clip=clip)


def shoot_preview(page: Any, base: str) -> None:
    """Disabling https://app.example.com (the first entry): the form, its preview, its Save."""
    change = base + "/admin/corsadmin/allowedorigin/1/change/"
    page.goto(change)
    page.uncheck("#id_enabled")
    page.screenshot(path=str(ROOT / "docs" / "admin-preview-form.png"), full_page=True)
    page.click("#corsadmin-preview-button")
    page.wait_for_selector("#corsadmin-preview")
    page.screenshot(path=str(ROOT / "docs" / "admin-preview.png"), full_page=True)
    page.goto(change)
    page.uncheck("#id_enabled")
    page.click("input[name=_save]")
    page.wait_for_selector("#corsadmin-preview")
    page.screenshot(path=str(ROOT / "docs" / "admin-preview-confirm.png"), full_page=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--demo-data":
        import django

        django.setup()
        demo_data()
        return
    var = Path(tempfile.mkdtemp(prefix="corsadmin-shots-"))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="project.settings",
        CORSADMIN_VAR_DIR=str(var),
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_DEBUG="1",  # runserver serves the admin's static files
        PYTHONPATH=str(ROOT),
    )
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)

    def manage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )

    manage("migrate", "--noinput")
    manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
    subprocess.run([sys.executable, __file__, "--demo-data"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/admin/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/admin/login/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(base + "/admin/")
            if sys.argv[1:] != ["preview"]:
                shoot(page, base)
            shoot_preview(page, base)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
