"""Read a browser's CORS console message: which engine, the page's origin, the URL, and what failed.

Chromium, Firefox and WebKit word their refusals differently (:mod:`corsadmin.engine_checks`
writes the same words); pasted from a console the text may be wrapped, carry typographic quotes
or the lines around it. ``read`` finds the first message it knows and tells what it names; the
check (:mod:`corsadmin.browser_check`) fills its question from it. Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

MAX_MESSAGE_LENGTH = 8192


class Unreadable(ValueError):
    """Not a CORS console message of a browser this knows (the text says why)."""


@dataclass(frozen=True)
class ConsoleMessage:
    engine: str  # chromium | firefox | webkit
    failed: str  # the failed check, as engines.Verdict.reason names it
    url: str | None = None  # the URL fetched (Firefox names no origin; WebKit's first line no URL)
    origin: str | None = None
    method: str | None = None  # as the page wrote it, when the message names it
    headers: tuple[str, ...] = ()  # a request header the message names
    credentials: str | None = None  # "include" when the message says the fetch sent credentials
    preflight: bool = False  # the message is about the preflight's answer


def _normalised(text: str) -> str:
    text = re.sub("[‘’‚‛′`]", "'", text)
    text = re.sub("[“”„″]", '"', text)
    return re.sub(r"\s+", " ", text).strip()


_CHROMIUM = re.compile(
    r"Access to [\w -]{1,40}? at '(?P<url>[^']+)'(?: \(redirected from '[^']+'\))? from origin "
    r"'(?P<origin>[^']+)' has been blocked by CORS policy: (?P<rest>.*)"
)
_FIREFOX = re.compile(
    r"Cross-Origin Request (?:Blocked|Warning): The Same Origin Policy (?:will )?disallows? reading the "
    r"remote resource at '?(?P<url>\S+?)'?\.? (?:soon\. )?\(Reason: (?P<rest>.*)"
)
_WEBKIT_URL = re.compile(
    r"(?:Fetch API|XMLHttpRequest|EventSource)? ?cannot load (?P<url>\S+?)\.? due to access control"
)
_WEBKIT_ORIGIN = re.compile(r"\bOrigin (?P<origin>\S+?) is not allowed by Access-Control-Allow-Origin")
_INCLUDE = re.compile(
    r"credentials mode is 'include'|withCredentials|credentials flag is true", re.IGNORECASE
)

# (pattern, failed check, is about the preflight); the first that matches names the failure.
_CHROMIUM_REASONS = [
    (r"must not be the wildcard '\*'", "wildcard-with-credentials", False),
    (r"No 'Access-Control-Allow-Origin' header is present", "missing-allow-origin", False),
    (r"contains multiple values", "multiple-allow-origin", False),
    (r"contains the invalid value", "invalid-allow-origin", False),
    (r"that is not equal to the supplied origin", "allow-origin-mismatch", False),
    (r"'Access-Control-Allow-Credentials' header in the response is", "allow-credentials", False),
    (r"It does not have HTTP ok status", "preflight-status", True),
    (r"Cannot parse Access-Control-Allow-Methods", "invalid-allow-methods", True),
    (r"Cannot parse Access-Control-Allow-Headers", "invalid-allow-headers", True),
    (r"Method (?P<method>\S+) is not allowed by Access-Control-Allow-Methods", "method", True),
    (r"Request header field (?P<header>\S+) is not allowed by Access-Control-Allow-Headers", "header", True),
]
_FIREFOX_REASONS = [
    (r"Multiple CORS header 'Access-Control-Allow-Origin' not allowed", "multiple-allow-origin", False),
    (r"CORS header 'Access-Control-Allow-Origin' missing", "missing-allow-origin", False),
    (r"CORS header 'Access-Control-Allow-Origin' does not match", "allow-origin-mismatch", False),
    (r"Credential is not supported if the CORS header", "wildcard-with-credentials", False),
    (r"expected 'true' in CORS header 'Access-Control-Allow-Credentials'", "allow-credentials", False),
    (r"CORS preflight (?:response|channel) did not succeed", "preflight-status", True),
    (r"invalid token '[^']*' in CORS header 'Access-Control-Allow-Methods'", "invalid-allow-methods", True),
    (r"invalid token '[^']*' in CORS header 'Access-Control-Allow-Headers'", "invalid-allow-headers", True),
    (r"Did not find method in CORS header 'Access-Control-Allow-Methods'", "method", True),
    (
        (
            r"(?:header|missing token) '(?P<header>[^']+)' "
            r"(?:is not allowed according to header|in CORS header) 'Access-Control-Allow-Headers'"
        ),
        "header",
        True,
    ),
    (r"the 'Authorization' header is not covered", "header", True),
    (r"CORS request did not succeed", "network", False),
]
_WEBKIT_REASONS = [
    (r"Preflight response is not successful", "preflight-status", True),
    (r"Cannot use wildcard in Access-Control-Allow-Origin", "wildcard-with-credentials", False),
    (r"Access-Control-Allow-Origin cannot contain more than one origin", "multiple-allow-origin", False),
    (r"Credentials flag is true, but Access-Control-Allow-Credentials", "allow-credentials", False),
    (r"Header Access-Control-Allow-Methods has an invalid value", "invalid-allow-methods", True),
    (r"Header Access-Control-Allow-Headers has an invalid value", "invalid-allow-headers", True),
    (r"Method (?P<method>\S+?) is not allowed by Access-Control-Allow-Methods", "method", True),
    (r"Request header field (?P<header>\S+?) is not allowed by Access-Control-Allow-Headers", "header", True),
    # Missing or another origin: WebKit says the same.
    (r"is not allowed by Access-Control-Allow-Origin", "origin-not-allowed", False),
]


def _reason(text: str, table: list[tuple[str, str, bool]]) -> tuple[str, bool, str | None, str | None]:
    """(failed check, about the preflight, method, header) of the first reason ``text`` gives."""
    for pattern, failed, preflight in table:
        found = re.search(pattern, text)
        if found:
            groups = found.groupdict()
            header = groups.get("header") or ("Authorization" if "'Authorization'" in pattern else None)
            return failed, preflight, groups.get("method"), header
    raise Unreadable(_("The message names no CORS failure corsadmin knows."))


def read(text: str) -> ConsoleMessage:
    """What a pasted console message tells; ``Unreadable`` (with the reason) when it is none."""
    if len(text) > MAX_MESSAGE_LENGTH:
        raise Unreadable(_("The message is longer than %(max)d characters.") % {"max": MAX_MESSAGE_LENGTH})
    plain = _normalised(text)
    credentials = "include" if _INCLUDE.search(plain) else None
    found = _CHROMIUM.search(plain)
    if found:
        rest = found["rest"]
        failed, preflight, method, header = _reason(rest, _CHROMIUM_REASONS)
        preflight = preflight or rest.startswith("Response to preflight request")
        return ConsoleMessage(
            "chromium",
            failed,
            found["url"],
            found["origin"],
            method,
            (header,) if header else (),
            credentials,
            preflight,
        )
    found = _FIREFOX.search(plain)
    if found:
        failed, preflight, method, header = _reason(found["rest"], _FIREFOX_REASONS)
        if failed in ("wildcard-with-credentials", "allow-credentials"):
            credentials = "include"
        url = found["url"].strip("'")
        return ConsoleMessage(
            "firefox", failed, url, None, method, (header,) if header else (), credentials, preflight
        )
    url_line = _WEBKIT_URL.search(plain)
    origin_line = _WEBKIT_ORIGIN.search(plain)
    if url_line or origin_line or re.search(r"Preflight response is not successful|credentials flag", plain):
        try:
            failed, preflight, method, header = _reason(plain, _WEBKIT_REASONS)
        except Unreadable:
            if url_line is None:
                raise
            failed, preflight, method, header = "access-control", False, None, None
        return ConsoleMessage(
            "webkit",
            failed,
            url_line["url"] if url_line else None,
            origin_line["origin"] if origin_line else None,
            method,
            (header,) if header else (),
            credentials,
            preflight,
        )
    raise Unreadable(
        _(
            "This is no CORS message of Chromium, Firefox or Safari that corsadmin can read: paste the "
            "whole line from the browser's console (e.g. \"Access to fetch at '…' from origin '…' has been "
            'blocked by CORS policy: …").'
        )
    )
