"""Which optional parts are installed: the REST API's packages (``pip install "corsadmin[api]"``),
and the system check that says what is missing (``corsadmin.E017``)."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

API_EXTRA = 'pip install "corsadmin[api]"'
# module -> the distribution that brings it (what ``corsadmin[api]`` installs)
API_MODULES = {
    "rest_framework": "djangorestframework",
    "django_filters": "django-filter",
    "drf_spectacular": "drf-spectacular",
    "drf_spectacular_sidecar": "drf-spectacular-sidecar",
}


# The settings only the REST API reads: set, they say the site means to serve it.
API_SETTINGS = ("AUTH_FAILURE_LIMIT", "IMPORT_JOB_ORIGINS", "IMPORT_MAX_BYTES", "REQUEST_TIMEOUT")


class APINotInstalled(ImproperlyConfigured):
    """Code imports the REST API (``corsadmin.api``) without ``corsadmin[api]`` installed."""


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails, or a module set to None in sys.modules
        return False


def missing_for_api() -> list[str]:
    """The distributions the REST API needs that are not installed."""
    return [distribution for module, distribution in API_MODULES.items() if not _importable(module)]


def api_missing_message(missing: list[str]) -> str:
    return (
        f"corsadmin's REST API (corsadmin.api, and corsadmin.metrics_urls, which authenticates as "
        f"it does) needs {', '.join(missing)}, which are not installed: {API_EXTRA}. "
        "The core install serves the middleware, the admin and the command line without it."
    )


@register(Tags.urls)
def check_api_installed(**kwargs: Any) -> list[CheckMessage]:
    """The REST API routed or configured without its packages."""
    missing = missing_for_api()
    if not missing:
        return []
    reasons = []
    configured = getattr(settings, "CORSADMIN", None)
    given = [name for name in API_SETTINGS if isinstance(configured, dict) and name in configured]
    if given:
        reasons.append(f"CORSADMIN sets {', '.join(given)}, read only by the REST API")
    if hasattr(settings, "REST_FRAMEWORK"):
        reasons.append("REST_FRAMEWORK is set")
    if _urlconf_needs_api():
        reasons.append(f"the URLconf {settings.ROOT_URLCONF!r} includes corsadmin's REST API")
    if not reasons:
        return []
    return [
        Error(
            f"{api_missing_message(missing)} ({'; '.join(reasons)}.)",
            hint=f"{API_EXTRA}, or leave the REST API out: no include('corsadmin.api.urls') nor "
            "'corsadmin.metrics_urls' in the URLconf (route corsadmin.metrics.view for the metrics).",
            id="corsadmin.E017",
        )
    ]


def _urlconf_needs_api() -> bool:
    """Whether importing the URLconf stops at the REST API's missing packages."""
    name = getattr(settings, "ROOT_URLCONF", None)
    if not isinstance(name, str):
        return False
    try:
        import_module(name)
    except APINotInstalled:
        return True
    except ImportError as exc:  # a module importing DRF itself, before corsadmin.api could say so
        return (exc.name or "").split(".")[0] in API_MODULES
    except Exception:  # noqa: BLE001  (any other fault of the URLconf is Django's own check's)
        return False
    return False
