"""Policy hosts: validation, canonical form, and the lookup a snapshot does per request.

A policy's ``hosts`` lists exact host names (``api.example.com``, ``127.0.0.1``,
``[::1]``) or wildcards (``*.example.com``: any host of one or more labels below
``example.com``, never ``example.com`` itself). Stored canonical: lower case, IDN as
punycode, no port, no trailing dot. An empty list means every host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.http.request import HttpRequest, split_domain_port
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .origins import _canonical_hostname, _canonical_ip

MAX_HOSTS = 100
HOSTS_HINT = gettext_lazy(
    "Write a host name (api.example.com), a wildcard (*.example.com) or an IP address, without a port."
)


def _fail(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_host")


def canonical_host(value: object) -> str:
    """One entry of ``hosts`` in canonical form, or ``ValidationError``."""
    if not isinstance(value, str):
        raise _fail(_("A host must be text. %(hint)s") % {"hint": HOSTS_HINT})
    text = value.strip()
    if not text:
        raise _fail(_("A host is empty. %(hint)s") % {"hint": HOSTS_HINT})
    if len(text) > 255:
        raise _fail(_("A host is longer than 253 characters."))
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise _fail(
            _("'%(host)s' contains whitespace or a control character. %(hint)s")
            % {"host": text, "hint": HOSTS_HINT}
        )
    if "://" in text or any(c in text for c in "/?#@\\"):
        raise _fail(
            _("'%(host)s' is not a bare host: leave out the scheme and any path. %(hint)s")
            % {"host": text, "hint": HOSTS_HINT}
        )
    if text == "*":
        raise _fail(_("'*' is not a host: leave the list empty for every host."))
    if text.startswith("["):
        if not text.endswith("]"):
            raise _fail(
                _("'%(host)s' has a port or text after its IPv6 address; hosts carry no port.")
                % {"host": text}
            )
        ip = _canonical_ip(text, text)
        assert ip is not None
        return ip
    if ":" in text:
        raise _fail(
            _("'%(host)s' has a port; a policy's hosts carry none (%(hint)s)")
            % {"host": text, "hint": HOSTS_HINT}
        )
    wildcard = text.startswith("*.")
    host = text[2:] if wildcard else text
    try:
        ip = _canonical_ip(host, text)
        if ip is not None:
            if wildcard:
                raise _fail(
                    _("'%(value)s' puts a wildcard on an IP address; list each address.") % {"value": text}
                )
            return ip
        host = _canonical_hostname(host, text)
    except ValidationError as exc:
        raise _fail(exc.messages[0]) from None
    return f"*.{host}" if wildcard else host


def clean_hosts(value: object) -> list[str]:
    """A policy's ``hosts``: a list of canonical hosts, deduplicated, in order."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(_("Give the hosts as a list of strings."), code="invalid_list")
    if len(value) > MAX_HOSTS:
        raise ValidationError(
            _("At most %(max)d hosts per policy.") % {"max": MAX_HOSTS}, code="invalid_list"
        )
    cleaned: list[str] = []
    for item in value:
        host = canonical_host(item)
        if host not in cleaned:
            cleaned.append(host)
    return cleaned


_MISSING = object()
# What ``request.get_host()`` said per raw host fields: asking Django (settings, validation)
# costs several µs a request. Bounded; cleared when a setting it reads changes.
# (X-Forwarded-Host, Host, SERVER_NAME, SERVER_PORT, X-Forwarded-Port): META values, any type
_validated: dict[tuple[Any, ...], str | None] = {}
VALIDATED_SIZE = 1024
HOST_SETTINGS = frozenset({"ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT", "DEBUG"})


def request_host(request: HttpRequest) -> str | None:
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
    return cast("str | None", found)  # _MISSING replaced above


def _setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting in HOST_SETTINGS:
        _validated.clear()


setting_changed.connect(_setting_changed)


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
