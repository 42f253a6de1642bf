"""``check`` as a browser asks it: credentials, each engine's verdict, the host Django refuses, the fix.

The one definition behind the admin's check page, the API's ``check/`` and ``cors check``. It
takes the middleware's decision as :func:`corsadmin.diagnosis.explain` tells it, feeds the
headers the middleware would send (the preflight's and the actual response's) into
:func:`corsadmin.engines.verdicts`, and answers what a page's ``fetch()`` gets in Chromium,
Firefox and WebKit. ``allowed`` is true only when every engine lets the page read the
response (with cookies, for ``credentials: 'include'``) and Django accepts the host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from . import diagnosis
from .console_messages import ConsoleMessage, Unreadable, read
from .engines import CREDENTIALS_MODES, ENGINES, Answer, Fetch, Verdict, needs_preflight, verdicts
from .fixes import offer
from .origins import MAX_ORIGIN_LENGTH
from .protected import guard
from .records import request_host
from .refresh import holder
from .snapshot import Decision

# What each engine's console says of a fetch answered 400 (the host Django refuses).
BAD_REQUEST = {
    "chromium": "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    "firefox": "GET {url} [HTTP/1.1 400 Bad Request]",
    "webkit": "Failed to load resource: the server responded with a status of 400 (Bad Request)",
}


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as ``HttpRequest.get_host`` reads it (DEBUG adds the local names)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def host_refused(host: str | None) -> bool:
    """Whether Django answers a request for ``host`` (port-less) 400: ``DisallowedHost``."""
    return host is not None and not validate_host(host, allowed_hosts())


def site_url(host: str | None, path: str) -> str:
    """The URL a page would fetch for this host and path (for the engines' messages)."""
    if host is None:
        concrete = [h for h in allowed_hosts() if h and h != "*" and not h.startswith(".")]
        host = concrete[0] if concrete else "localhost"
    scheme = "http" if host in ("localhost", "127.0.0.1", "[::1]") else "https"
    return f"{scheme}://{host}{path}"


def url_parts(url: str) -> tuple[str, str]:
    """(path, host with its port) of an absolute URL; ``ValueError`` when it is none."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(_("'%(url)s' is not an absolute http(s) URL.") % {"url": url})
    return parts.path or "/", parts.netloc.rpartition("@")[2]


def _answer(decision: Decision, status: int) -> Answer:
    headers: list[tuple[str, str]] = [("Vary", "Origin")] if decision.covered else []
    return Answer(status, (*headers, *decision.headers.items()))


def check(
    origin: str,
    path: str = "/",
    method: str = "GET",
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
    host: str | None = None,
    credentials: str = "same-origin",
    url: str | None = None,
    console: ConsoleMessage | None = None,
) -> dict[str, Any]:
    """The decision for a page's fetch, explained, per engine, with the fix for a refusal.

    ``method`` is as the page wrote it (``fetch()`` keeps ``patch`` lower-case); OPTIONS with
    ``request_method`` asks about the preflight of a fetch of ``request_method``. ``host`` is
    the request's host (canonical, port-less). ``url`` the URL fetched (named in the engines'
    messages; built from ``host`` and ``path`` when not given). ``console`` a console message
    the question was read from: its engine and failure are explained too.
    """
    if credentials not in CREDENTIALS_MODES:
        raise ValueError(_("credentials must be one of omit, same-origin, include."))
    refused = host_refused(host)
    deciding_host = None if refused else host  # what the middleware sees: get_host() fails
    result = diagnosis.explain(
        origin, path, method.upper(), request_method, request_headers, private_network, deciding_host
    )
    result["host"] = host
    is_preflight = method.upper() == "OPTIONS" and request_method is not None
    fetch_method = request_method if is_preflight and request_method else method
    names = tuple(name.strip() for name in (request_headers or "").split(",") if name.strip())
    fetch = Fetch(origin.strip(" \t"), url or site_url(host, path), fetch_method, names, credentials)
    snapshot = holder.get()
    asked = fetch.origin if len(fetch.origin) <= MAX_ORIGIN_LENGTH else None
    preflight = None
    if needs_preflight(fetch):
        # A covered path: the middleware answers the preflight itself (200); else the view does.
        decision = guard(snapshot.decide(asked, path, "OPTIONS", True, private_network, deciding_host), path)
        preflight = _answer(decision, 200)
    actual = guard(snapshot.decide(asked, path, fetch_method.upper(), False, False, deciding_host), path)
    response = _answer(actual, 400 if refused else 200)
    per_engine = verdicts(fetch, preflight, response)
    result["credentials"] = credentials
    result["url"] = fetch.url
    result["engines"] = {name: _engine(per_engine[name], name, fetch, refused) for name in ENGINES}
    explained_allowed = result["allowed"]
    browsers_allow = all(entry["allowed"] for entry in result["engines"].values())
    result["allowed"] = explained_allowed and browsers_allow and not refused
    result["status"] = 400 if refused else None
    reasons = []
    if refused:
        reasons.append(
            _(
                "Django refuses the host %(host)s (ALLOWED_HOSTS): the request is answered 400 Bad "
                "Request before it reaches the view, whatever CORS says."
            )
            % {"host": repr(host)}
        )
    reasons.append(result["reason"])
    if not all(v.allowed for v in per_engine.values()):
        reasons += _browsers_refuse(fetch, per_engine, result, explained_allowed)
    if console is not None:
        result["console"] = _console(console, result)
        reasons.append(result["console"]["explanation"])
    result["reason"] = " ".join(reason for reason in reasons if reason)
    result["fix"] = [] if result["allowed"] else offer(result, fetch, per_engine, refused)
    result["middleware_allows"] = explained_allowed
    return result


def _engine(verdict: Verdict, engine: str, fetch: Fetch, refused: bool) -> dict[str, Any]:
    allowed, message = verdict.allowed, verdict.message
    if allowed and refused:
        allowed, message = False, BAD_REQUEST[engine].format(url=fetch.url)
    return {
        "allowed": allowed,
        "message": message,
        "warnings": list(verdict.warnings),
        "preflight_cached_seconds": verdict.max_age,
    }


def _browsers_refuse(
    fetch: Fetch, per_engine: dict[str, Verdict], result: dict[str, Any], explained_allowed: bool
) -> list[str]:
    """Why browsers refuse, in words, where the middleware's decision alone does not tell."""
    failures = {verdict.reason for verdict in per_engine.values() if not verdict.allowed}
    refusing = ", ".join(name.capitalize() for name in ENGINES if not per_engine[name].allowed)
    words = {"policy": repr(result["policy"]), "engines": refusing, "method": repr(fetch.method)}
    said = []
    if "allow-credentials" in failures:
        said.append(
            _(
                "The fetch sends credentials (credentials: 'include') and the response carries no "
                "Access-Control-Allow-Credentials: true (policy %(policy)s does not allow credentials), so "
                "%(engines)s will not let the page read it."
            )
            % words
        )
    if "wildcard-with-credentials" in failures:
        said.append(
            _(
                "The fetch sends credentials (credentials: 'include') and policy %(policy)s answers "
                "Access-Control-Allow-Origin: *, which %(engines)s never accept with credentials."
            )
            % words
        )
    if "method" in failures and fetch.method != fetch.method.upper():
        said.append(
            _(
                "fetch() sends the method %(method)s as written (it upper-cases only DELETE, GET, HEAD, "
                "OPTIONS, POST and PUT), and browsers compare it byte for byte with "
                "Access-Control-Allow-Methods: %(engines)s refuse it."
            )
            % words
        )
    if not said and explained_allowed:
        if "header" in failures:
            said.append(
                _(
                    "But %(engines)s refuse a request header the preflight's Access-Control-Allow-Headers "
                    "does not name (Authorization is never covered by '*' in the Fetch Standard)."
                )
                % words
            )
        else:
            said.append(_("But %(engines)s refuse it: see their messages.") % words)
    return said


FAILURES = {
    "missing-allow-origin": gettext_noop("the response carried no Access-Control-Allow-Origin header"),
    "multiple-allow-origin": gettext_noop(
        "the response carried Access-Control-Allow-Origin more than once, or "
        "with more than one origin (often a proxy adding its own)"
    ),
    "allow-origin-mismatch": gettext_noop("the response's Access-Control-Allow-Origin named another origin"),
    "origin-not-allowed": gettext_noop(
        "the response's Access-Control-Allow-Origin was missing or named another origin"
    ),
    "invalid-allow-origin": gettext_noop("the response's Access-Control-Allow-Origin is no origin"),
    "wildcard-with-credentials": gettext_noop(
        "the response answered Access-Control-Allow-Origin: * to a fetch with credentials"
    ),
    "allow-credentials": gettext_noop(
        "the fetch sent credentials and the response did not say Access-Control-Allow-Credentials: true"
    ),
    "preflight-status": gettext_noop("the preflight (OPTIONS) was not answered with a 2xx status"),
    "invalid-allow-methods": gettext_noop("the preflight's Access-Control-Allow-Methods could not be parsed"),
    "invalid-allow-headers": gettext_noop("the preflight's Access-Control-Allow-Headers could not be parsed"),
    "method": gettext_noop("the preflight's Access-Control-Allow-Methods did not list the method"),
    "header": gettext_noop("the preflight's Access-Control-Allow-Headers did not list a request header"),
    "network": gettext_noop("the request did not get an answer at all (network, TLS or DNS)"),
    "access-control": gettext_noop("the response did not pass the browser's access control checks"),
}


def _console(console: ConsoleMessage, result: dict[str, Any]) -> dict[str, Any]:
    said = _(FAILURES.get(console.failed, FAILURES["access-control"]))
    if result["allowed"]:
        explanation = _(
            "The %(engine)s message says %(failure)s; corsadmin allows this request today, so that "
            "answer came from elsewhere: a proxy, CDN or gateway in front of the site, a cached "
            "answer, another server, or a change made since."
        ) % {"engine": console.engine.capitalize(), "failure": said}
    else:
        explanation = _("The %(engine)s message says %(failure)s.") % {
            "engine": console.engine.capitalize(),
            "failure": said,
        }
    return {"engine": console.engine, "failed": console.failed, "explanation": explanation}


def question_from_url(given: dict[str, Any]) -> dict[str, Any]:
    """The question with ``path`` and ``host`` taken from its ``url`` (unless given explicitly).

    ``Unreadable`` when the URL is no absolute http(s) URL, ``ValidationError`` for a bad host.
    """
    question = dict(given)
    try:
        path, host = url_parts(question["url"])
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    question.setdefault("path", path)
    if not question.get("host"):
        question["host"] = request_host(host)
    return question


def question_from_message(text: str, given: dict[str, Any]) -> tuple[dict[str, Any], ConsoleMessage]:
    """The check's question filled from a pasted console message; what was given explicitly wins.

    ``given`` holds only what the user gave. ``Unreadable`` (a ``ValueError``) when the message is
    no CORS message corsadmin can read, or when it lacks what the question needs (Firefox names no
    origin: give it); ``ValidationError`` for a bad host in its URL.
    """
    console = read(text)
    question = dict(given)
    if not question.get("origin"):
        if not console.origin:
            raise Unreadable(_("The message names no origin (Firefox never does): give the origin too."))
        question["origin"] = console.origin
    if console.url and not question.get("url"):
        question["url"] = console.url
    if question.get("url"):
        question = question_from_url(question)
    elif "path" not in question:
        raise Unreadable(
            _(
                "The message names no URL: paste the line with the URL too (Safari's 'cannot load …'), "
                "or give the path."
            )
        )
    if console.method and "method" not in given:
        question["method"] = console.method
    if console.headers and "request_headers" not in given:
        question["request_headers"] = ", ".join(console.headers)
    if console.credentials and "credentials" not in given:
        question["credentials"] = console.credentials
    return question, console
