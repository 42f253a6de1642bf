"""corsadmin's settings, read at call time so ``override_settings`` just works."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "REFRESH_INTERVAL": 1.0,
    "CACHE_ALIAS": "default",
}

# The defaults of django-cors-headers, which new policies start from.
DEFAULT_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
DEFAULT_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)
DEFAULT_MAX_AGE = 7200


def get(name: str) -> Any:
    return getattr(settings, "CORSADMIN", {}).get(name, DEFAULTS[name])


def refresh_interval() -> float:
    return float(get("REFRESH_INTERVAL"))


def cache_alias() -> str:
    return str(get("CACHE_ALIAS"))
