"""Token-free protection of unsafe requests from other origins, read from the browser's fetch
metadata (``Sec-Fetch-Site``) and ``Origin``, as Go 1.25's ``http.CrossOriginProtection``
decides; corsadmin's ``csrf`` entries (and ``CSRF_TRUSTED_ORIGINS``) are the origins trusted.

The decision for a request whose method is unsafe:

1. ``Sec-Fetch-Site: same-origin`` or ``none`` (the user's own navigation): it passes.
2. Neither ``Sec-Fetch-Site`` nor ``Origin``: it passes (not a browser, or one too old to send
   either, which then cannot be cross-origin without ``Origin``).
3. Otherwise ``Origin`` must be trusted: the site's own (scheme and host, as Django's CSRF check
   compares them), in ``CSRF_TRUSTED_ORIGINS``, or an entry trusted for the CSRF check on the
   request's path and host (``corsadmin.middleware.CsrfViewMiddleware``); else it is refused,
   unless its path or view is exempt.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.checks import CheckMessage, Error, register
from django.core.signals import setting_changed
from django.http import HttpRequest

from . import conf

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
TRUSTED_SITES = frozenset({"same-origin", "none"})
REASON = "Cross-origin request refused: Sec-Fetch-Site is %s and Origin %s is not trusted."
REASON_NO_ORIGIN = "Cross-origin request refused: Sec-Fetch-Site is %s and there is no Origin header."

View = TypeVar("View", bound=Callable[..., Any])


def cross_origin_exempt(view: View) -> View:
    """Mark a view as exempt from ``CrossOriginProtectionMiddleware`` (as ``csrf_exempt`` does
    for Django's CSRF middleware; the two are independent)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    wrapped.cross_origin_exempt = True  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def refusal(request: HttpRequest, origin_trusted: Callable[[HttpRequest], bool]) -> str | None:
    """Why this request is refused, or None when it passes (exemptions aside)."""
    if request.method in SAFE_METHODS:
        return None
    meta = request.META
    site: str | None = meta.get("HTTP_SEC_FETCH_SITE")
    if site in TRUSTED_SITES:
        return None
    origin: str | None = meta.get("HTTP_ORIGIN")
    if not origin:
        return None if site is None else REASON_NO_ORIGIN % site
    if origin != "null" and origin_trusted(request):
        return None
    return REASON % (site or "absent", origin)


@functools.cache
def exempt_paths() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in conf.get("CROSS_ORIGIN_EXEMPT_PATHS"))


def exempt(request: HttpRequest, view: Callable[..., Any]) -> bool:
    if getattr(view, "cross_origin_exempt", False):
        return True
    return any(pattern.match(request.path_info) for pattern in exempt_paths())


@register()
def check_exempt_paths(**kwargs: object) -> list[CheckMessage]:
    patterns = conf.get("CROSS_ORIGIN_EXEMPT_PATHS")
    if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
        return [
            Error("CORSADMIN['CROSS_ORIGIN_EXEMPT_PATHS'] should be a list of regexes.", id="corsadmin.E019")
        ]
    errors: list[CheckMessage] = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(
                Error(
                    f"{pattern!r} in CORSADMIN['CROSS_ORIGIN_EXEMPT_PATHS'] is not a valid regex: {exc}.",
                    id="corsadmin.E019",
                )
            )
    return errors


def _setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "CORSADMIN":
        exempt_paths.cache_clear()


setting_changed.connect(_setting_changed)
