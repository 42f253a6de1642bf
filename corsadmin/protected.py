"""The admin, corsadmin's own API and its metrics are not readable cross-origin with credentials.

A policy allowing credentials on ``^/`` would otherwise let each of its origins read
the admin and the allow-list API with the user's session (and write, for an entry
that is also CSRF-trusted). Unless ``CORSADMIN["ALLOW_CREDENTIALS_ON_ADMIN"]`` is
True (``manage.py check`` then warns, corsadmin.W006), a credentialed decision on
those paths becomes a refusal: no ``Access-Control-*`` header. The metrics
(``corsadmin-metrics``, where the site routes them) are refused with credentials
always: no other site has a reason to read them as the user. Requests without
credentials are not affected.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from . import conf
from .snapshot import ALLOW_CREDENTIALS, Decision

# A URL of each protected part, and the part of it below that part's root.
_ROOTS = (("admin:index", ""), ("corsadmin-api:check", "check/"))
# Never with credentials, whatever ALLOW_CREDENTIALS_ON_ADMIN says.
_ALWAYS = (("corsadmin-metrics", ""),)


@lru_cache(maxsize=16)
def _prefixes(urlconf: Any, roots: tuple[tuple[str, str], ...] = _ROOTS) -> tuple[str, ...]:
    prefixes = []
    script_prefix = get_script_prefix()
    for name, tail in roots:
        try:
            url = reverse(name, urlconf=urlconf)
        except NoReverseMatch:
            continue
        url = "/" + url[len(script_prefix) :] if url.startswith(script_prefix) else url
        prefixes.append(url[: len(url) - len(tail)] if tail and url.endswith(tail) else url)
    return tuple(prefixes)


def protected_prefixes() -> tuple[str, ...]:
    """The path_info prefixes of the admin and of corsadmin's API in this site's URLconf."""
    return _prefixes(get_urlconf() or settings.ROOT_URLCONF)


def is_protected(path: str) -> bool:
    return path.startswith(protected_prefixes())


def always_protected(path: str) -> bool:
    return path.startswith(_prefixes(get_urlconf() or settings.ROOT_URLCONF, _ALWAYS))


def guard(decision: Decision, path: str) -> Decision:
    """The decision, or a refusal when it would expose the admin or the API with credentials."""
    if not decision.allowed or ALLOW_CREDENTIALS not in decision.headers:
        return decision
    if always_protected(path):
        return Decision(covered=True)
    if not is_protected(path) or conf.get("ALLOW_CREDENTIALS_ON_ADMIN"):
        return decision
    return Decision(covered=True)


def _clear(*, setting: str, **kwargs: Any) -> None:
    if setting in ("ROOT_URLCONF", "FORCE_SCRIPT_NAME"):
        _prefixes.cache_clear()


setting_changed.connect(_clear)
