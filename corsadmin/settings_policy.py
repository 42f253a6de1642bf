"""The built-in policy made of django-cors-headers' ``CORS_*`` settings.

It matches exactly as django-cors-headers does (scheme and netloc compared
after ``urlsplit``, regexes with ``match``), so a site can swap middlewares
without a change in behaviour. Regexes run in RE2, which takes linear time on
any Origin an attacker sends; a pattern RE2 cannot compile falls back to
Python's ``re`` and ``manage.py check`` warns about it (corsadmin.W005).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import re2

from . import conf
from .entries import Entry
from .snapshot import ALL_ORIGINS, ALLOW_PRIVATE_NETWORK, CompiledPolicy, header_safe

NAME = "(settings)"


def compile_origin_regex(pattern: Any) -> Any:
    """Compile one settings regex, in RE2 when it can be; ``re.error`` if invalid."""
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    flags = pattern.flags & ~re.UNICODE if isinstance(pattern, re.Pattern) else 0
    if not flags:
        try:
            return re2.compile(text)
        except Exception:
            pass
    return re.compile(text, flags)


class SettingsPolicy(CompiledPolicy):
    __slots__ = ("pairs", "literals", "regexes")

    def __init__(self, *, origins: Iterable[str], regexes: Iterable[Any], **options: Any) -> None:
        super().__init__(**options)
        # Covers CORS_URLS_REGEX whatever it allows, as django-cors-headers does (``Vary``,
        # preflights answered): only a database policy that allows nothing covers nothing.
        self.live_until = math.inf
        self.pairs: dict[tuple[str, str], Entry] = {}
        # Entries without a host (null, file://) match only the very same string:
        # comparing their empty netloc would let any host-less Origin through.
        self.literals: dict[str, Entry] = {}
        for text in origins:
            try:
                url = urlsplit(text)
            except ValueError:
                continue
            if url.netloc:
                self.pairs.setdefault((url.scheme, url.netloc), (None, text, math.inf))
            else:
                self.literals[text] = (None, text, math.inf)
        self.regexes = []
        for pattern in regexes:
            try:
                self.regexes.append((compile_origin_regex(pattern), getattr(pattern, "pattern", pattern)))
            except Exception:
                continue  # reported by corsadmin.E002

    def find(self, origin: str, now: float) -> Entry | None:
        if not header_safe(origin):
            return None
        try:
            url = urlsplit(origin)
        except ValueError:
            return None
        entry = self.pairs.get((url.scheme, url.netloc)) if url.netloc else self.literals.get(origin)
        if entry is not None:
            return entry
        for regex, text in self.regexes:
            if regex.match(origin):
                return (None, text, math.inf)
        if self.allow_all:
            return ALL_ORIGINS
        return None

    def response_headers(
        self, origin: str, method: str, preflight: bool, private_network: bool
    ) -> dict[str, str]:
        """As django-cors-headers writes them: it answers ``Access-Control-Request-Private-Network:
        true`` on any request it allows, not only on a preflight."""
        headers = super().response_headers(origin, method, preflight, private_network)
        if private_network and self.private_network:
            headers[ALLOW_PRIVATE_NETWORK] = "true"
        return headers


def build() -> SettingsPolicy:
    """The settings policy as configured now (whether or not any origin setting is set)."""
    return SettingsPolicy(
        name=NAME,
        # Python's re, as django-cors-headers runs it (the operator's own setting).
        url_regex=re.compile(conf.cors_setting("CORS_URLS_REGEX")),
        allow_all_origins=bool(conf.cors_setting("CORS_ALLOW_ALL_ORIGINS")),
        allow_credentials=bool(conf.cors_setting("CORS_ALLOW_CREDENTIALS")),
        allow_methods=conf.cors_setting("CORS_ALLOW_METHODS"),
        allow_headers=conf.cors_setting("CORS_ALLOW_HEADERS"),
        expose_headers=conf.cors_setting("CORS_EXPOSE_HEADERS"),
        max_age=conf.cors_setting("CORS_PREFLIGHT_MAX_AGE"),
        allow_private_network=bool(conf.cors_setting("CORS_ALLOW_PRIVATE_NETWORK")),
        origins=conf.cors_setting("CORS_ALLOWED_ORIGINS"),
        regexes=conf.cors_setting("CORS_ALLOWED_ORIGIN_REGEXES"),
    )
