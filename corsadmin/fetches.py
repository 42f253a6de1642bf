"""A cross-origin ``fetch()`` and the answers it gets, as the Fetch Standard reads them.

The shared vocabulary of :mod:`corsadmin.engines` (the per-engine verdicts) and
:mod:`corsadmin.engine_checks` (each engine's checks): the request a page makes, one HTTP
answer, and the standard's helpers (method normalisation, CORS-safelisted request headers,
header values as a browser reads them, token lists). Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

CREDENTIALS_MODES = ("omit", "same-origin", "include")

# fetch() upper-cases these methods (case-insensitively matched) and keeps any other as written.
NORMALISED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# Request headers a page cannot set: fetch() drops them without a word.
FORBIDDEN_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie", "cookie2",
        "date", "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te",
        "trailer", "transfer-encoding", "upgrade", "via",
    }
)  # fmt: skip
SAFELISTED_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Bytes an `Accept` value may not hold to stay safelisted (the Fetch Standard's
# "CORS-unsafe request-header byte"), and what Accept-Language/Content-Language may.
_UNSAFE_BYTES = re.compile(r'[\x00-\x08\x0a-\x1f"():<>?@\[\\\]{}\x7f]')
_LANGUAGE = re.compile(r"^[0-9A-Za-z *,\-.;=]*$")

ACAO = "access-control-allow-origin"
ACAC = "access-control-allow-credentials"
ACAM = "access-control-allow-methods"
ACAH = "access-control-allow-headers"
MAX_AGE = "access-control-max-age"


@dataclass(frozen=True)
class Fetch:
    """A page's ``fetch(url, {method, headers, credentials})``.

    ``headers`` are the names of the request headers the page sets; an item may be
    ``"Name: value"`` where the value decides whether the header is safelisted
    (``Content-Type: text/plain``). A bare ``Content-Type`` counts as a JSON body, which
    needs a preflight.
    """

    origin: str  # the page's origin
    url: str  # absolute URL fetched (used in messages)
    method: str = "GET"  # as the page wrote it
    headers: tuple[str, ...] = ()  # request header NAMES the page sets
    credentials: str = "same-origin"  # "omit" | "same-origin" | "include"


@dataclass(frozen=True)
class Answer:
    """One HTTP response as received."""

    status: int
    headers: tuple[tuple[str, str], ...]  # (name, value) pairs as received, duplicates kept


class Fail(NamedTuple):
    reason: str
    message: str


def normalise_method(method: str) -> str:
    """The method as ``fetch()`` sends it: only the six standard methods are upper-cased."""
    return method.upper() if method.upper() in NORMALISED_METHODS else method


def _name_value(item: str) -> tuple[str, str | None]:
    name, sep, value = item.partition(":")
    return name.strip(), (value.strip() if sep else None)


def _safelisted(name: str, value: str | None) -> bool:
    if name in ("accept", "accept-language", "content-language"):
        if value is None:
            return True
        if len(value) > 128:
            return False
        return not _UNSAFE_BYTES.search(value) if name == "accept" else bool(_LANGUAGE.match(value))
    if name == "content-type" and value is not None:
        essence = value.split(";", 1)[0].strip().lower()
        return essence in SAFELISTED_CONTENT_TYPES and len(value) <= 128 and not _UNSAFE_BYTES.search(value)
    return False


def unsafe_headers(fetch: Fetch) -> list[str]:
    """The headers a preflight asks about (lower-case, sorted, once each), as a browser lists them."""
    names: set[str] = set()
    for item in fetch.headers:
        name, value = _name_value(item)
        lower = name.lower()
        if not lower or lower in FORBIDDEN_HEADERS or lower.startswith(("proxy-", "sec-")):
            continue
        if not _safelisted(lower, value):
            names.add(lower)
    return sorted(names)


def spelled(fetch: Fetch) -> dict[str, str]:
    """Each unsafe header's name as the page wrote it (WebKit's console keeps the spelling)."""
    return {name.lower(): name for name, _value in map(_name_value, fetch.headers)}


def url_origin(url: str) -> str:
    """The serialized origin of an absolute URL (lower-case scheme and host, default port dropped)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port is None or port == default else f"{scheme}://{host}:{port}"


def is_cross_origin(fetch: Fetch) -> bool:
    return url_origin(fetch.url) != fetch.origin


def needs_preflight(fetch: Fetch) -> bool:
    """Whether a browser sends an ``OPTIONS`` preflight before this fetch."""
    if not is_cross_origin(fetch):
        return False
    return normalise_method(fetch.method) not in SAFELISTED_METHODS or bool(unsafe_headers(fetch))


def get_header(answer: Answer, name: str) -> str | None:
    """The header's value as a browser reads it: repeated lines joined by ", "; None when absent."""
    values = [value.strip(" \t") for key, value in answer.headers if key.lower() == name]
    return ", ".join(values) if values else None


def count_header(answer: Answer, name: str) -> int:
    return sum(1 for key, _value in answer.headers if key.lower() == name)


def ok_status(status: int) -> bool:
    return 200 <= status <= 299


def token_list(value: str | None) -> list[str] | None:
    """A comma-separated list of tokens (empty items skipped); None when an item is no token."""
    items = [item.strip(" \t") for item in (value or "").split(",")]
    items = [item for item in items if item]
    return items if all(TOKEN.match(item) for item in items) else None


def method_allowed(method: str, methods: list[str], include: bool) -> bool:
    # Byte for byte: `PATCH` does not allow a page's `patch` (fetch() leaves it lower-case).
    return method in methods or method in SAFELISTED_METHODS or (not include and "*" in methods)


def uncovered(fetch: Fetch, allowed: list[str], include: bool, authorization_wildcard: bool) -> list[str]:
    """The unsafe request headers the answer's list does not cover, in the order they are checked."""
    lower = {item.lower() for item in allowed}
    wildcard = not include and "*" in allowed
    return [
        name
        for name in unsafe_headers(fetch)
        if name not in lower and not (wildcard and (name != "authorization" or authorization_wildcard))
    ]
