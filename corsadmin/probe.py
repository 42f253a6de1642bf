"""Probe the real edge: send a browser's preflight and request to a URL, through whatever CDN,
gateway or proxy stands in front of the site, and keep what came back.

Only hosts the operator may probe are reached (``CORSADMIN["PROBE_HOSTS"]``, default the site's
``ALLOWED_HOSTS``, Django's patterns; ``*`` never counts: it would make the probe an open proxy
into every network the server can reach), over ``http``/``https`` only, with one deadline for
the whole probe (``PROBE_TIMEOUT``), at most ``PROBE_MAX_BYTES`` of each body read, and
redirects of the request followed at most ``PROBE_MAX_REDIRECTS`` times, each to a host that may
be probed. No cookie is sent, whatever the credentials mode: it changes only what a browser
would require of the answers (``corsadmin.engines``). The comparison with corsadmin's own
decision is ``corsadmin.edge``'s.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.utils.translation import gettext as _

from .engines import normalise_method
from .fields import Refusal
from .models import TOKEN_PATTERN
from .origins import split_request_origin
from .probe_settings import max_bytes, max_redirects, may_probe, timeout

CREDENTIALS = ("omit", "same-origin", "include")
MAX_URL_LENGTH = 2048
MAX_HEADERS = 32
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
# Request headers a page cannot set (the Fetch Standard's forbidden request-header names).
FORBIDDEN_HEADERS = frozenset(
    {
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "access-control-request-private-network",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    }
)
FORBIDDEN_PREFIXES = ("proxy-", "sec-")
# Headers kept from an answer beside Access-Control-*: what explains a CORS outcome at an edge.
KEPT_HEADERS = frozenset(
    {
        "vary",
        "cache-control",
        "age",
        "expires",
        "pragma",
        "location",
        "content-type",
        "server",
        "via",
        "x-cache",
        "x-cache-hits",
        "cf-cache-status",
        "x-served-by",
    }
)
_TOKEN = re.compile(rf"{TOKEN_PATTERN}\Z")
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e]")  # a header value: visible ASCII, spaces and tabs
_BAD_URL = re.compile(r"[^\x21-\x7e]")  # a URL as sent: visible ASCII (punycode, percent-encoded)


# --- the question -------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    url: str
    origin: str
    method: str  # as the page wrote it
    headers: tuple[tuple[str, str], ...]  # (name as written, value)
    credentials: str = "same-origin"

    @property
    def wire_method(self) -> str:
        """As fetch() sends it (only the six standard methods upper-cased)."""
        return normalise_method(self.method)

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(name.lower() for name, _value in self.headers)

    @property
    def header_items(self) -> tuple[str, ...]:
        """``Name: value`` each, as ``engines.Fetch`` takes them."""
        return tuple(f"{name}: {value}" for name, value in self.headers)


def url_host(url: str) -> str:
    """The host of an http(s) URL, lower case, brackets kept for IPv6; "" when there is none."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return f"[{host}]" if ":" in host else host


def check_url(url: str) -> list[str]:
    """Why ``url`` may not be probed (empty: it may)."""
    if len(url) > MAX_URL_LENGTH:
        return [_("Give a URL of at most %(max)d characters.") % {"max": MAX_URL_LENGTH}]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return [_("Give an absolute http:// or https:// URL, e.g. https://api.example.com/items/.")]
    if parts.scheme not in ("http", "https") or not parts.hostname or _BAD_URL.search(url):
        return [_("Give an absolute http:// or https:// URL, e.g. https://api.example.com/items/.")]
    if parts.username is not None or parts.password is not None:
        return [_("Give a URL without a user name or password.")]
    host = url_host(url)
    if not may_probe(host):
        return [
            _(
                "%(host)s may not be probed: add it to CORSADMIN['PROBE_HOSTS'] (by default the "
                "site's ALLOWED_HOSTS, without '*')."
            )
            % {"host": host}
        ]
    return []


def parse_headers(items: Iterable[str]) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """``Name`` or ``Name: value`` (a name alone gets the value ``probe``) as a page sets them."""
    headers: list[tuple[str, str]] = []
    errors: list[str] = []
    for item in items:
        name, sep, value = item.partition(":")
        name, value = name.strip(), value.strip() if sep else "probe"
        lower = name.lower()
        if not _TOKEN.match(name) or _BAD_VALUE.search(value):
            errors.append(
                _("%(item)s is not a request header: give Name or Name: value.") % {"item": repr(item)}
            )
        elif lower in FORBIDDEN_HEADERS or lower.startswith(FORBIDDEN_PREFIXES):
            errors.append(_("%(name)s is a header a page cannot set (the browser sets it).") % {"name": name})
        else:
            headers.append((name, value))
    if len(headers) > MAX_HEADERS:
        errors.append(_("Give at most %(max)d headers.") % {"max": MAX_HEADERS})
    return tuple(headers), errors


def question(
    url: str, origin: str, method: str = "GET", headers: Sequence[str] = (), credentials: str = "same-origin"
) -> Question:
    """The probe asked, checked; ``Refusal({field: [messages]})`` with every error."""
    errors: dict[str, list[str]] = {}
    if problems := check_url(url):
        errors["url"] = problems
    if origin != "null" and split_request_origin(origin) is None:
        errors["origin"] = [
            _(
                "Give the Origin header a browser sends: scheme://host[:port] in lower case, without "
                "the default port or a path (e.g. https://app.example.com), or null."
            )
        ]
    if not _TOKEN.match(method) or len(method) > 32:
        errors["method"] = [_("Give an HTTP method, e.g. GET or PUT.")]
    elif method.upper() in FORBIDDEN_METHODS:
        errors["method"] = [_("%(method)s is a method a page cannot send.") % {"method": method}]
    parsed, problems = parse_headers(headers)
    if problems:
        errors["headers"] = problems
    if credentials not in CREDENTIALS:
        errors["credentials"] = [_("Give omit, same-origin or include.")]
    if errors:
        raise Refusal(errors)
    return Question(url, origin, method, parsed, credentials)


# --- the transport -------------------------------------------------------------------


class Failure(Exception):
    """No answer: ``code`` is timeout, refused, dns, tls, too-large or protocol."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class Exchange:
    """One request as sent and what came back (the last hop, after any redirect followed)."""

    url: str
    method: str
    sent: tuple[tuple[str, str], ...]
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # kept ones, as received, duplicates kept
    body_bytes: int = 0
    truncated: bool = False
    redirects: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, str] | None = None

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "sent": [list(pair) for pair in self.sent],
            "status": self.status,
            "headers": [list(pair) for pair in self.headers],
            "body_bytes": self.body_bytes,
            "truncated": self.truncated,
            "redirects": self.redirects,
            "error": self.error,
        }


def _kept(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("access-control-") or lower in KEPT_HEADERS


def _resolve(host: str, port: int, left: float) -> list[tuple[Any, ...]]:
    """The addresses of ``host``, within ``left`` seconds (the resolver has no timeout of its own)."""
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    worker = threading.Thread(target=lookup, name="corsadmin-probe-dns", daemon=True)
    worker.start()
    worker.join(max(left, 0.0))
    if not found:
        raise Failure("timeout", _("No answer within %(seconds)g s.") % {"seconds": timeout()})
    if isinstance(found[0], OSError) or not found[0]:
        raise Failure("dns", _("The host name %(host)s cannot be resolved.") % {"host": host})
    return [tuple(address) for address in found[0]]


def _connect(addresses: list[tuple[Any, ...]], deadline: float) -> socket.socket:
    """A socket connected to the first address that answers (as browsers try each), by ``deadline``."""
    failure: OSError = ConnectionRefusedError()
    for family, kind, proto, _name, address in addresses:
        raw = socket.socket(family, kind, proto)
        try:
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            raw.connect(address)
            return raw
        except TimeoutError:
            raw.close()
            raise
        except OSError as exc:
            raw.close()
            failure = exc
    raise failure


def _cut(sock: socket.socket, fired: list[bool]) -> None:
    fired.append(True)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def send(url: str, method: str, headers: Sequence[tuple[str, str]], deadline: float) -> Exchange:
    """One HTTP request (no redirect followed), its answer's kept headers and at most
    ``PROBE_MAX_BYTES`` of its body counted; ``Failure`` when no answer came by ``deadline``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    exchange = Exchange(url, method, tuple(headers))
    addresses = _resolve(host, port, deadline - time.monotonic())
    fired: list[bool] = []
    try:
        raw = _connect(addresses, deadline)
    except TimeoutError:
        raise Failure("timeout", _("No answer within %(seconds)g s.") % {"seconds": timeout()}) from None
    except ConnectionRefusedError:
        raise Failure("refused", _("The connection was refused.")) from None
    except OSError as exc:
        raise Failure("refused", _("No connection: %(error)s") % {"error": exc.strerror or exc}) from None
    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), _cut, (raw, fired))
    timer.daemon = True
    timer.start()
    sock: socket.socket = raw
    try:
        if https:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        connection = http.client.HTTPConnection(host, port)
        connection.sock = sock
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", parts.netloc.rpartition("@")[2])
        for name, value in headers:
            connection.putheader(name, value)
        if method.upper() in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", "0")
        connection.putheader("Connection", "close")
        connection.endheaders()
        response = connection.getresponse()
        exchange.status = response.status
        exchange.headers = tuple((k, v) for k, v in response.getheaders() if _kept(k))
        limit = max_bytes()
        while exchange.body_bytes <= limit and (
            chunk := response.read(min(65536, limit + 1 - exchange.body_bytes))
        ):
            exchange.body_bytes += len(chunk)
        if exchange.body_bytes > limit:
            exchange.body_bytes, exchange.truncated = limit, True
        if fired:  # cut at the deadline: what was read may look whole (the headers ended by the cut)
            raise Failure("timeout", _("No answer within %(seconds)g s.") % {"seconds": timeout()})
        return exchange
    except Failure:
        raise
    except TimeoutError:
        raise Failure("timeout", _("No answer within %(seconds)g s.") % {"seconds": timeout()}) from None
    except ConnectionRefusedError:
        raise Failure("refused", _("The connection was refused.")) from None
    except ssl.SSLError as exc:
        raise Failure("tls", _("TLS failed: %(error)s") % {"error": exc.reason or exc}) from None
    except ValueError as exc:  # http.client's refusal of a request it cannot send (checked before)
        raise Failure(
            "protocol", _("Not an HTTP answer: %(error)s") % {"error": type(exc).__name__}
        ) from None
    except (http.client.LineTooLong, http.client.HTTPException, OSError) as exc:
        if fired:
            raise Failure("timeout", _("No answer within %(seconds)g s.") % {"seconds": timeout()}) from None
        if isinstance(exc, http.client.LineTooLong) or "more than" in str(exc):
            return _failed(exchange, "too-large", _("The answer's headers are too large."))
        raise Failure(
            "protocol", _("Not an HTTP answer: %(error)s") % {"error": type(exc).__name__}
        ) from None
    finally:
        timer.cancel()
        sock.close()
        raw.close()


def _failed(exchange: Exchange, code: str, detail: str) -> Exchange:
    exchange.error = {"code": code, "detail": detail}
    return exchange


def exchange(url: str, method: str, headers: Sequence[tuple[str, str]], deadline: float) -> Exchange:
    """``send``, with a ``Failure`` kept as the exchange's ``error``."""
    try:
        return send(url, method, headers, deadline)
    except Failure as exc:
        return _failed(Exchange(url, method, tuple(headers)), exc.code, exc.detail)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def follow(q: Question, deadline: float) -> tuple[Exchange, str]:
    """The request as a browser's fetch sends it, its redirects followed while they stay within
    the hosts that may be probed; also the Origin the last hop was sent with (``null`` once a
    redirect went to another origin: the Fetch Standard's tainted origin)."""
    url, origin, method = q.url, q.origin, q.wire_method
    hops: list[dict[str, Any]] = []
    for _hop in range(max_redirects() + 1):
        answer = exchange(url, method, (("Origin", origin), *q.headers), deadline)
        location = (answer.values("location") or [""])[0]
        if answer.error or answer.status not in (301, 302, 303, 307, 308) or not location:
            answer.redirects = hops
            return answer, origin
        target = urljoin(url, location)
        refused = check_url(target)
        if refused or urlsplit(target).scheme not in ("http", "https"):
            answer.redirects = hops
            why = _("Redirect not followed: %(why)s") % {"why": refused[0] if refused else target}
            return _failed(answer, "redirect-refused", why), origin
        hops.append({"status": answer.status, "location": location})
        if _origin_of(target) != _origin_of(url) and origin != _origin_of(url):
            origin = "null"
        if (answer.status == 303 and method != "HEAD") or (answer.status in (301, 302) and method == "POST"):
            method = "GET"
        url = target
    answer.redirects = hops
    return _failed(answer, "redirects", _("More than %(max)d redirects.") % {"max": max_redirects()}), origin
