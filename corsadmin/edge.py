"""What the edge did to corsadmin's answer: a probe (``corsadmin.probe``) run, each engine's
verdict on what came back (``corsadmin.engines``), corsadmin's own decision for the URL when
this site serves it (``corsadmin.diagnosis.explain``, as ``check`` asks it), and each
disagreement between the two named.

Kinds of disagreement (each ``{"kind", "detail"}``, the detail saying which answer):
``duplicate-allow-origin`` (two ``Access-Control-Allow-Origin`` values: a proxy added one),
``cached-other-origin`` (it names another origin: e.g. an answer cached for that origin),
``missing-vary`` (a cacheable answer that depends on the origin without ``Vary: Origin``),
``stripped-header`` / ``rewritten-header`` / ``added-header`` (a CORS header corsadmin sends is
missing, or has another value; or one it does not send is there), ``error-without-cors`` (an
error answer without CORS headers where corsadmin would allow: the edge's own error page),
``preflight-not-ok`` (a preflight answered with a status other than 2xx), ``no-answer`` (a
timeout, a refused connection, ...) and ``redirect-refused`` (a redirect the probe may not follow).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from . import browser_check, diagnosis, engines, probe
from .probe import Exchange, Question
from .probe_settings import served_here, timeout
from .records import request_host

ACAO = "access-control-allow-origin"
# Statuses a shared cache may store without explicit freshness (RFC 9110 15.1).
HEURISTIC_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
# Access-Control-* headers compared as sets of comma-separated items (case-insensitive ones lower-cased).
LISTS = {
    "access-control-allow-methods": False,
    "access-control-allow-headers": True,
    "access-control-expose-headers": True,
}


def run(q: Question) -> dict[str, Any]:
    """Send the probe and compare: the answer of ``/api/cors/probe/``."""
    deadline = time.monotonic() + timeout()
    fetch = engines.Fetch(q.origin, q.url, q.method, q.header_items, q.credentials)
    preflight: Exchange | None = None
    if engines.needs_preflight(fetch):
        sent = [("Origin", q.origin), ("Access-Control-Request-Method", q.wire_method)]
        if names := engines.unsafe_headers(fetch):
            sent.append(("Access-Control-Request-Headers", ",".join(names)))
        preflight = probe.exchange(q.url, "OPTIONS", sent, deadline)
    response: Exchange | None = None
    origin = q.origin
    if preflight is None or _lets_through(preflight):
        response, origin = probe.follow(q, deadline)
    expected = _expected(q, preflight, response, origin)
    return {
        "url": q.url,
        "origin": q.origin,
        "method": q.wire_method,
        "headers": list(q.header_names),
        "credentials": q.credentials,
        "preflight": preflight.as_dict() if preflight else None,
        "response": response.as_dict() if response else None,
        "engines": _verdicts(fetch, origin, preflight, response),
        "expected": expected,
        "disagreements": disagreements(q, preflight, response, expected, origin),
    }


def _lets_through(preflight: Exchange) -> bool:
    """Whether any browser could go on to the request: a 2xx preflight answer naming an origin.
    (Otherwise the request is not sent: no browser would send it, and it may change data.)"""
    return preflight.error is None and 200 <= (preflight.status or 0) < 300 and bool(preflight.values(ACAO))


def _answer(ex: Exchange | None) -> engines.Answer | None:
    if ex is None or ex.status is None:
        return None
    return engines.Answer(ex.status, ex.headers)


def _verdicts(
    fetch: engines.Fetch, origin: str, preflight: Exchange | None, response: Exchange | None
) -> dict[str, dict[str, Any]]:
    failed = next((ex for ex in (preflight, response) if ex is not None and ex.status is None), None)
    if failed is not None and failed.error is not None:
        message = _("The %(which)s got no answer (%(detail)s): the browser reports a network error.") % {
            "which": _("preflight") if failed is preflight else _("request"),
            "detail": failed.error["detail"],
        }
        stage = "preflight" if failed is preflight else "response"
        return {
            name: dataclasses.asdict(engines.Verdict(False, message, "no-answer", stage))
            for name in engines.ENGINES
        }
    if origin != fetch.origin:
        fetch = dataclasses.replace(fetch, origin=origin)
    verdicts = engines.verdicts(fetch, _answer(preflight), _answer(response))
    return {name: dataclasses.asdict(verdict) for name, verdict in verdicts.items()}


# --- corsadmin's own decision ---------------------------------------------------------------


def _pairs(headers: dict[str, str], covered: bool) -> list[list[str]]:
    pairs = [[name, value] for name, value in headers.items()]
    return [*pairs, ["Vary", "Origin"]] if covered else pairs


def _expected(
    q: Question, preflight: Exchange | None, response: Exchange | None, origin: str
) -> dict[str, Any] | None:
    """What corsadmin answers for the URL (and for the last hop of the request), or None when
    this site does not serve its host: the headers the middleware sends (``diagnosis``), and
    the verdict ``check`` gives for the same fetch, credentials included (``browser_check``)."""
    if not served_here(probe.url_host(q.url)):
        return None
    names = ",".join(q.header_names)
    result: dict[str, Any] = {"preflight": None, "response": None}
    if preflight is not None:
        pre = _explain(q.url, q.origin, "OPTIONS", names, request_method=q.wire_method)
        result["preflight"] = {"headers": _pairs(pre["headers"], pre["covered"])}
    url = response.url if response is not None else q.url
    if not served_here(probe.url_host(url)):  # redirected elsewhere: the decision for the URL asked
        url, origin = q.url, q.origin
    elif response is not None:
        asked = _explain(url, origin, q.wire_method, names)
        result["response"] = {"headers": _pairs(asked["headers"], asked["covered"])}
    parts = urlsplit(url)
    decided = browser_check.check(
        origin,
        parts.path or "/",
        q.method,
        request_headers=names,
        host=request_host(parts.netloc.rpartition("@")[2]),
        credentials=q.credentials,
        url=url,
    )
    result.update(allowed=decided["allowed"], policy=decided["policy"], reason=decided["reason"])
    return result


def _explain(
    url: str, origin: str, method: str, names: str, request_method: str | None = None
) -> dict[str, Any]:
    parts = urlsplit(url)
    return diagnosis.explain(
        origin,
        parts.path or "/",
        method,
        request_method=request_method,
        request_headers=names,
        host=request_host(parts.netloc.rpartition("@")[2]),
    )


# --- the disagreements ---------------------------------------------------------------------


def _say(kind: str, detail: str) -> dict[str, str]:
    return {"kind": kind, "detail": detail}


def _tokens(values: list[str]) -> list[str]:
    return [item.strip().lower() for value in values for item in value.split(",") if item.strip()]


def _cacheable(ex: Exchange) -> bool:
    """Whether a shared cache may store this answer (RFC 9111: not for OPTIONS)."""
    if ex.method == "OPTIONS" or ex.status is None:
        return False
    directives = {item.split("=")[0] for item in _tokens(ex.values("cache-control"))}
    if directives & {"no-store", "private"}:
        return False
    explicit = directives & {"max-age", "s-maxage", "public"} or ex.values("expires")
    return bool(explicit) or ex.status in HEURISTIC_STATUSES


def _cache_note(ex: Exchange) -> str:
    seen = [
        f"{name}: {value}"
        for name, value in ex.headers
        if name.lower() in ("age", "x-cache", "cf-cache-status", "via")
    ]
    return f" ({'; '.join(seen)})" if seen else ""


def _same(name: str, expected: str, got: str) -> bool:
    if name in LISTS:
        fold = LISTS[name]
        items = [
            {(i.strip().lower() if fold else i.strip()) for i in v.split(",") if i.strip()}
            for v in (expected, got)
        ]
        return items[0] == items[1]
    return expected.strip() == got.strip()


def compare(
    which: str, ex: Exchange, expected: dict[str, Any] | None, origin: str, allowed: bool | None
) -> list[dict[str, str]]:
    """The disagreements of one answer (``which``: "preflight" or "response")."""
    where = {"which": _("preflight") if which == "preflight" else _("response"), "url": ex.url}
    if ex.error is not None:
        kind = "redirect-refused" if ex.error["code"] in ("redirect-refused", "redirects") else "no-answer"
        return [_say(kind, f"{where['which']}: {ex.error['detail']}")]
    found: list[dict[str, str]] = []
    acao = ex.values(ACAO)
    status = ex.status or 0
    if len(acao) > 1 or (acao and "," in acao[0]):
        found.append(
            _say(
                "duplicate-allow-origin",
                _(
                    "The %(which)s carries Access-Control-Allow-Origin more than once (%(values)s): a proxy "
                    "added its own; browsers refuse more than one value."
                )
                % {**where, "values": " | ".join(acao)},
            )
        )
    elif acao and acao[0] not in ("*", origin):
        found.append(
            _say(
                "cached-other-origin",
                _(
                    "The %(which)s allows %(other)s, not %(origin)s: an answer made for another origin "
                    "(a cache keyed without the Origin header?)%(note)s."
                )
                % {**where, "other": acao[0], "origin": origin, "note": _cache_note(ex)},
            )
        )
    error_page = status >= 400 and not acao and allowed is not False
    vary = _tokens(ex.values("vary"))
    varies = "origin" in vary or "*" in vary
    wanted: list[list[str]] = list((expected or {}).get("headers", []))
    corsadmin_varies = any(name == "Vary" for name, _value in wanted)
    if not varies and (corsadmin_varies or (acao and acao != ["*"])):
        if _cacheable(ex):
            found.append(
                _say(
                    "missing-vary",
                    _(
                        "The %(which)s can be cached and depends on the origin, but has no Vary: Origin: a "
                        "cache may hand it to another origin."
                    )
                    % where,
                )
            )
        elif corsadmin_varies and not error_page:
            found.append(
                _say("stripped-header", _("The %(which)s lacks Vary: Origin, which corsadmin sends.") % where)
            )
    if which == "response" and error_page:
        found.append(
            _say(
                "error-without-cors",
                _(
                    "The response is a %(status)d without CORS headers%(note)s: an error page of the edge? "
                    "The browser shows a CORS error instead of the status."
                )
                % {"status": status, "note": _cache_note(ex) or _server_note(ex)},
            )
        )
    if which == "preflight" and not 200 <= status < 300:
        found.append(
            _say(
                "preflight-not-ok",
                _("The preflight was answered %(status)d%(note)s: browsers need a 2xx answer.")
                % {"status": status, "note": _server_note(ex)},
            )
        )
    if expected is None:
        return found
    expected_names = {name.lower() for name, _value in wanted}
    for name, value in wanted:
        lower = name.lower()
        got = ex.values(lower)
        if lower in ("vary", ACAO) and got:
            continue  # said above
        if not got:
            if lower != "vary" and not error_page:
                found.append(
                    _say(
                        "stripped-header",
                        _("The %(which)s lacks %(name)s, which corsadmin sends (%(value)s).")
                        % {**where, "name": name, "value": value},
                    )
                )
        elif not _same(lower, value, got[0]):
            found.append(
                _say(
                    "rewritten-header",
                    _("The %(which)s has %(name)s: %(got)s; corsadmin sends %(value)s.")
                    % {**where, "name": name, "got": got[0], "value": value},
                )
            )
    for name, value in ex.headers:
        if name.lower().startswith("access-control-") and name.lower() not in expected_names:
            found.append(
                _say(
                    "added-header",
                    _("The %(which)s has %(name)s: %(value)s, which corsadmin does not send here.")
                    % {**where, "name": name, "value": value},
                )
            )
            expected_names.add(name.lower())
    return found


def _server_note(ex: Exchange) -> str:
    seen = [f"{name}: {value}" for name, value in ex.headers if name.lower() in ("server", "via")]
    return f" ({'; '.join(seen)})" if seen else ""


def disagreements(
    q: Question,
    preflight: Exchange | None,
    response: Exchange | None,
    expected: dict[str, Any] | None,
    origin: str,
) -> list[dict[str, str]]:
    allowed = None if expected is None else expected["allowed"]
    found = []
    if preflight is not None:
        found += compare("preflight", preflight, expected and expected["preflight"], q.origin, allowed)
    if response is not None:
        found += compare("response", response, expected and expected["response"], origin, allowed)
    return found
