"""The probe's settings (``CORSADMIN["PROBE_*"]``), read at call time, and their system checks.

``PROBE_HOSTS``: the hosts ``cors probe``, ``/api/cors/probe/`` and the admin's Probe page may
send requests to, as Django's ``ALLOWED_HOSTS`` patterns (``api.example.com``, or
``.example.com`` for the domain and its subdomains; a port is not part of a pattern). None (the
default) takes ``ALLOWED_HOSTS`` itself. ``*`` never counts, in either: a site that answers any
Host header has not said which hosts are its own, and a probe that may reach any host would be a
proxy into every network the server can reach (cloud metadata, internal services).
"""

from __future__ import annotations

from numbers import Real

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.http.request import validate_host

from . import conf


def timeout() -> float:
    """Seconds the whole probe may take: every connection, request and redirect together."""
    return float(conf.get("PROBE_TIMEOUT"))


def max_bytes() -> int:
    return int(conf.get("PROBE_MAX_BYTES"))


def max_redirects() -> int:
    return int(conf.get("PROBE_MAX_REDIRECTS"))


def _allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as Django reads it (under ``DEBUG`` an empty list is the loopback names)."""
    return list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])


def host_patterns() -> list[str]:
    """The patterns of the hosts that may be probed, without ``*``."""
    patterns = conf.get("PROBE_HOSTS")
    if patterns is None:
        patterns = _allowed_hosts()
    return [p.lower() for p in patterns if isinstance(p, str) and p != "*"]


def may_probe(host: str) -> bool:
    """Whether ``host`` (no port; IPv6 in brackets) is one the operator may probe."""
    return bool(host) and validate_host(host.lower(), host_patterns())


def served_here(host: str) -> bool:
    """Whether this site answers requests for ``host`` (it passes ``ALLOWED_HOSTS``)."""
    return bool(host) and validate_host(host.lower(), _allowed_hosts())


@register(Tags.security)
def check_probe_settings(**kwargs: object) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    hosts = conf.get("PROBE_HOSTS")
    if hosts is not None and (
        isinstance(hosts, str)
        or not isinstance(hosts, (list, tuple))
        or not all(isinstance(h, str) for h in hosts)
    ):
        messages.append(
            Error(
                "CORSADMIN['PROBE_HOSTS'] should be a list of host patterns (as ALLOWED_HOSTS), or None.",
                id="corsadmin.E020",
            )
        )
    elif hosts is not None and "*" in hosts:
        messages.append(
            Warning(
                "CORSADMIN['PROBE_HOSTS'] contains '*', which is ignored: the probe never reaches any host.",
                hint="Name the hosts that may be probed, e.g. ['api.example.com', '.cdn.example.com'].",
                id="corsadmin.W016",
            )
        )
    for name, kind, least, wanted in (
        ("PROBE_TIMEOUT", Real, 1e-9, "a number of seconds > 0"),
        ("PROBE_MAX_BYTES", int, 1, "a whole number of bytes > 0"),
        ("PROBE_MAX_REDIRECTS", int, 0, "a whole number >= 0"),
    ):
        value = conf.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value < least:
            messages.append(Error(f"CORSADMIN[{name!r}] should be {wanted}.", id="corsadmin.E020"))
    return messages
