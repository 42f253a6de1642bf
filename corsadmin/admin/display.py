"""How the admin's lists show times, counts and long text: one line each, whole on hover."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from .. import conf


def when(value: datetime | None) -> str:
    """A time as the admin shows every time: its localized DATETIME_FORMAT in the current time
    zone (``Dec. 7, 2026, 1:27 a.m.`` in English); "-" for none."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "-"


def cut(text: str) -> str:
    """Text on one line, cut with an ellipsis by CSS, whole on hover."""
    return format_html('<span class="corsadmin-cut" title="{}">{}</span>', text, text) if text else ""


def folded(lines: list[str]) -> str:
    """A folded column: one line each (the first is the column's main word)."""
    return format_html_join("", '<span class="corsadmin-line">{}</span>', ((line,) for line in lines))


def compact(number: int) -> str:
    """1234 -> "1.2k", 5600000 -> "5.6M"."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if number >= limit:
            return f"{number / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(number)


def settings_policy_rows() -> list[tuple[str, Any]]:
    """The built-in ``CORS_*`` settings policy's settings, shown read-only (none: no such policy)."""
    if not conf.has_settings_policy():
        return []
    return [(name, conf.cors_setting(name)) for name in conf.CORS_SETTINGS]
