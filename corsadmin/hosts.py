"""Policy hosts: validation, canonical form, and the lookup a snapshot does per request.

A policy's ``hosts`` lists exact host names (``api.example.com``, ``127.0.0.1``,
``[::1]``) or wildcards (``*.example.com``: any host of one or more labels below
``example.com``, never ``example.com`` itself). Stored canonical: lower case, IDN as
punycode, no port, no trailing dot. An empty list means every host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.http.request import split_domain_port

from .origins import _canonical_hostname, _canonical_ip

MAX_HOSTS = 100
HOSTS_HINT = (
    "Write a host name (api.example.com), a wildcard (*.example.com) or an IP address, without a port."
)


def _fail(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_host")


def canonical_host(value: Any) -> str:
    """One entry of ``hosts`` in canonical form, or ``ValidationError``."""
    if not isinstance(value, str):
        raise _fail(f"A host must be text. {HOSTS_HINT}")
    text = value.strip()
    if not text:
        raise _fail(f"A host is empty. {HOSTS_HINT}")
    if len(text) > 255:
        raise _fail("A host is longer than 253 characters.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise _fail(f"'{text}' contains whitespace or a control character. {HOSTS_HINT}")
    if "://" in text or any(c in text for c in "/?#@\\"):
        raise _fail(f"'{text}' is not a bare host: leave out the scheme and any path. {HOSTS_HINT}")
    if text == "*":
        raise _fail("'*' is not a host: leave the list empty for every host.")
    if text.startswith("["):
        if not text.endswith("]"):
            raise _fail(f"'{text}' has a port or text after its IPv6 address; hosts carry no port.")
        ip = _canonical_ip(text, text)
        assert ip is not None
        return ip
    if ":" in text:
        raise _fail(f"'{text}' has a port; a policy's hosts carry none ({HOSTS_HINT})")
    wildcard = text.startswith("*.")
    host = text[2:] if wildcard else text
    try:
        ip = _canonical_ip(host, text)
        if ip is not None:
            if wildcard:
                raise _fail(f"'{text}' puts a wildcard on an IP address; list each address.")
            return ip
        host = _canonical_hostname(host, text)
    except ValidationError as exc:
        raise _fail(exc.messages[0]) from None
    return f"*.{host}" if wildcard else host


def clean_hosts(value: Any) -> list[str]:
    """A policy's ``hosts``: a list of canonical hosts, deduplicated, in order."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError("Give the hosts as a list of strings.", code="invalid_list")
    if len(value) > MAX_HOSTS:
        raise ValidationError(f"At most {MAX_HOSTS} hosts per policy.", code="invalid_list")
    cleaned: list[str] = []
    for item in value:
        host = canonical_host(item)
        if host not in cleaned:
            cleaned.append(host)
    return cleaned


_MISSING = object()
# What ``request.get_host()`` said per raw host fields: asking Django (settings, validation)
# costs several µs a request. Bounded; cleared when a setting it reads changes.
_validated: dict[tuple[Any, ...], str | None] = {}
VALIDATED_SIZE = 1024
HOST_SETTINGS = frozenset({"ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT", "DEBUG"})


def request_host(request: Any) -> str | None:
    """The request's host as Django validated it (``get_host()``), port-less and lower case;
    None when Django refuses it (``DisallowedHost``) or cannot tell."""
    meta = request.META
    key = (
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("HTTP_X_FORWARDED_PORT"),
    )
    found = _validated.get(key, _MISSING)
    if found is _MISSING:
        try:
            domain, _port = split_domain_port(request.get_host())
            found = domain or None
        except Exception:  # DisallowedHost, or a malformed Host header: no host, never a 500
            found = None
        if len(_validated) >= VALIDATED_SIZE:
            _validated.clear()
        _validated[key] = found
    return found  # type: ignore[return-value]


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in HOST_SETTINGS:
        _validated.clear()


setting_changed.connect(_setting_changed)


T = TypeVar("T")


class HostIndex(Generic[T]):
    """Which items (policies) apply to a host: those for every host, those naming it, and
    those with a wildcard on one of its parents. Memoised per host, a bounded number."""

    MEMO_SIZE = 1024

    __slots__ = ("_every", "_exact", "_wildcards", "_order", "_memo", "scoped")

    def __init__(self, items: Sequence[T], hosts_of: Any) -> None:
        """``items`` in the order lookups must return them; ``hosts_of(item)`` its hosts."""
        self._order = {id(item): i for i, item in enumerate(items)}
        self._every = tuple(item for item in items if not hosts_of(item))
        self._exact: dict[str, list[T]] = {}
        self._wildcards: dict[str, list[T]] = {}
        for item in items:
            for host in hosts_of(item):
                if host.startswith("*."):
                    self._wildcards.setdefault(host[2:], []).append(item)
                else:
                    self._exact.setdefault(host, []).append(item)
        self.scoped = bool(self._exact or self._wildcards)
        self._memo: dict[str | None, tuple[T, ...]] = {}

    def get(self, host: str | None) -> tuple[T, ...]:
        if host is None or not self.scoped:
            return self._every
        found = self._memo.get(host)
        if found is None:
            found = self._lookup(host)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[host] = found
        return found

    def _lookup(self, host: str) -> tuple[T, ...]:
        matched: list[T] = list(self._exact.get(host, ()))
        wildcards = self._wildcards
        if wildcards:
            dot = host.find(".")
            while dot != -1:
                matched.extend(wildcards.get(host[dot + 1 :], ()))
                dot = host.find(".", dot + 1)
        if not matched:
            return self._every
        order = self._order
        unique = {id(item): item for item in (*self._every, *matched)}
        return tuple(sorted(unique.values(), key=lambda item: order[id(item)]))


def host_matches(hosts: Iterable[str], host: str | None) -> bool:
    """Whether a policy with these hosts applies to a request for ``host`` (plain, for tools)."""
    hosts = list(hosts)
    if not hosts:
        return True
    if host is None:
        return False
    for pattern in hosts:
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
            return True
        if pattern == host:
            return True
    return False
