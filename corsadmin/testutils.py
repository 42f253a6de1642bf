"""Helpers for the host project's own tests: serve a given allow-list, no database needed.

::

    from corsadmin.testutils import override_allowed_origins, override_cors

    @override_allowed_origins("https://app.example.com")
    def test_app_may_read(client):
        response = client.get("/api/x/", HTTP_ORIGIN="https://app.example.com")
        assert response["Access-Control-Allow-Origin"] == "https://app.example.com"

    def test_credentials(client):
        with override_cors(["https://app.example.com"], allow_credentials=True, url_regex=r"^/api/"):
            ...

Each works as a context manager and as a decorator of sync and async test functions
and of ``TestCase`` classes (like Django's ``override_settings``). For its duration the
middleware (and everything else that asks for the current decision) serves one policy
with exactly these origins, plus the ``CORS_*`` settings policy if the site has one;
the database allow-list is neither read nor changed. The previous allow-list (or the
enclosing override) comes back afterwards, also when the test fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.test.utils import TestContextDecorator

from . import conf
from .compiler import settings_snapshot
from .origins import parse_entry
from .refresh import holder
from .snapshot import CompiledPolicy, Snapshot

__all__ = ["override_allowed_origins", "override_cors"]

# The entry id of every overriding origin: no database row has it.
NO_ROW = 0


class override_cors(TestContextDecorator):  # noqa: N801  (named like Django's override_settings)
    """Serve one policy with these ``origins`` and options (the API's field names and
    defaults) while active. ``csrf_trusted=True`` also makes corsadmin's
    ``CsrfViewMiddleware`` trust them. Invalid origins raise ``ValueError`` at once."""

    def __init__(
        self,
        origins: Iterable[str] = (),
        *,
        name: str = "default",
        url_regex: str = "^/",
        allow_all_origins: bool = False,
        allow_credentials: bool = False,
        allow_methods: Iterable[str] = conf.DEFAULT_METHODS,
        allow_headers: Iterable[str] = conf.DEFAULT_HEADERS,
        expose_headers: Iterable[str] = (),
        max_age: int = conf.DEFAULT_MAX_AGE,
        allow_private_network: bool = False,
        csrf_trusted: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(origins, str):
            origins = (origins,)
        if allow_all_origins and allow_credentials:
            raise ValueError("allow_all_origins cannot be combined with allow_credentials.")
        self.origins = tuple(_canonical(origin) for origin in origins)
        self.options: dict[str, Any] = {
            "name": name,
            "url_regex": url_regex,
            "allow_all_origins": allow_all_origins,
            "allow_credentials": allow_credentials,
            "allow_methods": tuple(allow_methods),
            "allow_headers": tuple(allow_headers),
            "expose_headers": tuple(expose_headers),
            "max_age": max_age,
            "allow_private_network": allow_private_network,
        }
        CompiledPolicy(**self.options)  # a bad url_regex fails here, not inside the test
        self.csrf_trusted = csrf_trusted
        self._replaced: list[Snapshot | None] = []  # a stack: one decorator may be entered twice

    def snapshot(self) -> Snapshot:
        """The snapshot served while active (built when entered: the settings of that moment)."""
        entries = [(NO_ROW, origin, math.inf) for origin in self.origins]
        csrf = entries if self.csrf_trusted else ()
        return settings_snapshot([CompiledPolicy(entries=entries, csrf=csrf, **self.options)])

    def enable(self) -> Snapshot:
        snapshot = self.snapshot()
        self._replaced.append(holder.override(snapshot))
        return snapshot

    def disable(self) -> None:
        holder.override(self._replaced.pop())


def override_allowed_origins(*origins: str, **options: Any) -> override_cors:
    """``override_cors`` with the origins as arguments: ``override_allowed_origins(a, b)``."""
    return override_cors(origins, **options)


def _canonical(origin: str) -> str:
    try:
        return parse_entry(origin).text
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from exc
