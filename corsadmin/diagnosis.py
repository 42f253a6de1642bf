"""A decision of the middleware, explained: what it answers for a request, and why in words.

Asks the snapshot exactly as the middleware asks it (``Snapshot.decide`` and the
admin/API guard), then tells what a browser makes of the answer (a preflight's
methods and headers) and, for a refusal, what comes close: a disabled or expired
entry, another policy, another scheme or port. Used by the admin's check page, the
API's ``/check/`` and ``cors check``.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _

from .entries import EntryTable
from .hosts import host_matches
from .models import AllowedOrigin
from .origins import MAX_ORIGIN_LENGTH, canonical_origin, parse_entry, shared_hosting
from .protected import always_protected, guard, is_protected
from .refresh import holder
from .snapshot import ALLOW_CREDENTIALS, ALLOW_HEADERS, ALLOW_METHODS, Decision, Snapshot

SIMPLE_METHODS = frozenset({"GET", "HEAD", "POST"})
# Request headers a browser sends without a preflight (Content-Type only for
# form and text bodies, so a listed content-type is treated as needing one).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})


def _token_list(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def explain(
    origin: str,
    path: str = "/",
    method: str = "GET",
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
    host: str | None = None,
) -> dict[str, Any]:
    """The middleware's decision for a request, with the reason in words.

    ``host`` is the request's host (canonical, port-less): None is a request whose Host
    no policy's ``hosts`` could match (only the policies for every host apply). A refusal
    by an exception (a deny entry) names it: ``policy`` and ``matched`` are the deny
    entry's, ``effect`` is ``deny``; ``exception`` is the first deny entry met on the
    way, even when a lower policy then allowed. ``would_refuse`` names the report-only
    policies that would refuse what is allowed.

    ``method`` is the request's method; with ``OPTIONS`` and a
    ``request_method`` the request is a preflight, exactly as the middleware
    tells. ``headers`` are what the middleware sends for that request. For an
    actual request that a browser would preflight (a method other than
    GET/HEAD/POST, non-safelisted headers, or a private-network request),
    ``preflight`` holds that preflight's headers and whether they let the
    request through; ``allowed`` is the verdict a browser would reach.
    """
    # An HTTP server strips the spaces and tabs around a header's value before the
    # middleware sees it (RFC 9110 5.5): ask about the same value.
    origin = origin.strip(" \t")
    method = method.upper()
    snapshot = holder.get()
    asked_origin = origin if len(origin) <= MAX_ORIGIN_LENGTH else None
    is_preflight = method == "OPTIONS" and request_method is not None
    decision = guard(snapshot.decide(asked_origin, path, method, is_preflight, private_network, host), path)
    refused_by_exception = not decision.allowed and decision.denied_by is not None
    exception = (
        {"policy": decision.denied_policy, "origin": decision.denied_by} if decision.denied_by else None
    )
    result: dict[str, Any] = {
        "origin": origin,
        "path": path,
        "method": method,
        "host": host,
        "allowed": decision.allowed,
        "covered": decision.covered,
        "policy": decision.denied_policy if refused_by_exception else decision.policy,
        "matched": decision.denied_by if refused_by_exception else decision.matched,
        "effect": "deny" if refused_by_exception else ("allow" if decision.allowed else None),
        "exception": exception,
        "would_refuse": list(decision.would_refuse),
        "headers": dict(decision.headers),
        "preflight": None,
        "reason": _reason(snapshot, decision, origin, path, host),
    }
    wanted_headers = _token_list(request_headers or "")
    actual_method = (request_method or "").upper() if is_preflight else method
    needs_preflight = not is_preflight and (
        method not in SIMPLE_METHODS
        or any(h not in SAFELISTED_HEADERS for h in wanted_headers)
        or private_network
    )
    if is_preflight or needs_preflight:
        pre = (
            decision
            if is_preflight
            else guard(snapshot.decide(asked_origin, path, "OPTIONS", True, private_network, host), path)
        )
        headers = dict(pre.headers)
        credentials = ALLOW_CREDENTIALS in headers
        listed_methods = {m.strip() for m in headers.get(ALLOW_METHODS, "").split(",") if m.strip()}
        listed_headers = set(_token_list(headers.get(ALLOW_HEADERS, "")))
        any_method = "*" in listed_methods and not credentials
        any_header = "*" in listed_headers and not credentials
        method_ok = pre.allowed and (
            actual_method in SIMPLE_METHODS or actual_method in listed_methods or any_method
        )
        missing = [
            h
            for h in wanted_headers
            if h not in SAFELISTED_HEADERS
            and h not in listed_headers
            and not (any_header and h != "authorization")
        ]
        result["preflight"] = {
            "request_method": actual_method,
            "request_headers": wanted_headers,
            "allowed": pre.allowed and method_ok and not missing,
            "method_allowed": method_ok,
            "missing_headers": missing,
            "headers": headers,
        }
        result["allowed"] = result["allowed"] and result["preflight"]["allowed"]
        gaps = []
        if pre.allowed and not method_ok:
            gaps.append(_("the method %(method)s") % {"method": actual_method})
        if pre.allowed and missing:
            gaps.append(_("the request header(s) %(headers)s") % {"headers": ", ".join(missing)})
        if gaps:
            result["reason"] = _(
                "%(reason)s, but its preflight answer does not list %(gaps)s, so a browser refuses "
                "the request."
            ) % {"reason": result["reason"].rstrip("."), "gaps": _(" nor ").join(gaps)}
    return result


def _reason(snapshot: Snapshot, decision: Decision, origin: str, path: str, host: str | None = None) -> str:
    reason = _verdict(snapshot, decision, origin, path, host)
    if decision.would_refuse:
        names = ", ".join(repr(name) for name in decision.would_refuse)
        reason += " " + _(
            "Report-only policy %(names)s would refuse it: enforced as it stands, it would break "
            "this request (listed in the refused origins with report: true)."
        ) % {"names": names}
    skipped = [s for s in snapshot.skipped if s.kind == "policy" or s.name == origin]
    if skipped:
        reason += " " + _(
            "Left out of the allow-list, as they cannot be compiled (written around validation; "
            "fix or delete them): %(entries)s."
        ) % {"entries": "; ".join(s.describe() for s in skipped[:5])}
    return reason


def _covering(snapshot: Snapshot, path: str, host: str | None) -> tuple[list[str], list[str], list[str]]:
    """(enforcing, report-only) names of the enabled policies covering this path and host,
    and the names of those whose ``url_regex`` matches but which cover nothing, as they
    can allow nothing (no enabled, unexpired allow entry; not allow-all)."""
    enforcing: list[str] = []
    reporting: list[str] = []
    empty: list[str] = []
    now = time.time()
    for policy in snapshot.hosts.get(host):
        if policy.match_path(path):
            if policy.live_until <= now:
                empty.append(policy.name)
            else:
                (reporting if policy.report else enforcing).append(policy.name)
    return enforcing, reporting, empty


def _covers_nothing(empty: list[str]) -> str:
    """Why the policies ``empty`` (whose url_regex matches) do not cover the path."""
    names = ", ".join(map(repr, empty))
    return ngettext(
        "Policy %(names)s matches the path but covers nothing: it has no enabled, unexpired allow "
        "entry and does not allow all origins, so it changes no response (no Vary, no preflight "
        "answered) until it has one.",
        "Policies %(names)s match the path but cover nothing: none has an enabled, unexpired "
        "allow entry nor allows all origins, so they change no response (no Vary, no preflight "
        "answered) until they have one.",
        len(empty),
    ) % {"names": names}


def _verdict(snapshot: Snapshot, decision: Decision, origin: str, path: str, host: str | None) -> str:
    if not decision.allowed and decision.covered and always_protected(path):
        raw = snapshot.decide(origin if len(origin) <= MAX_ORIGIN_LENGTH else None, path, host=host)
        if raw.allowed:
            return _(
                "Policy %(policy)s allows %(origin)s with credentials, but %(path)s is corsadmin's "
                "metrics, which no other site may read with the user's cookies, whatever "
                "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] says."
            ) % {"policy": repr(raw.policy), "origin": repr(origin), "path": repr(path)}
    if not decision.allowed and decision.covered and is_protected(path):
        raw = snapshot.decide(origin if len(origin) <= MAX_ORIGIN_LENGTH else None, path, host=host)
        if raw.allowed:
            return _(
                "Policy %(policy)s allows %(origin)s with credentials, but %(path)s is the admin or "
                "corsadmin's API, which no other site may read with the user's cookies. Set "
                "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] = True if you really mean it."
            ) % {"policy": repr(raw.policy), "origin": repr(origin), "path": repr(path)}
    covering, reporting, empty = _covering(snapshot, path, host)
    where = _("%(path)s on host %(host)s") % {"path": repr(path), "host": repr(host)} if host else repr(path)
    if not decision.covered:
        reason = _("No enabled policy covers the path %(where)s: responses carry no CORS headers.") % {
            "where": where
        }
        if reporting:
            reason += " " + _("(Report-only %(names)s never change a response.)") % {
                "names": ", ".join(map(repr, reporting))
            }
        if empty:
            reason += " " + _covers_nothing(empty)
            notes = _listing_notes(origin, path, host, covering, reporting, empty)
            if notes:
                reason += " " + gettext("Note: %(notes)s.") % {"notes": "; ".join(notes)}
        return reason
    exception = ""
    if decision.denied_by:
        exception = _("policy %(policy)s refuses it by its exception (deny entry) %(entry)s") % {
            "policy": repr(decision.denied_policy),
            "entry": repr(decision.denied_by),
        }
    if decision.allowed:
        reason = _("Allowed by policy %(policy)s (entry %(entry)s).") % {
            "policy": repr(decision.policy),
            "entry": repr(decision.matched),
        }
        if exception:
            reason += " " + _("Before it, %(exception)s.") % {"exception": exception}
        return reason
    if exception:
        return _("Refused: %(exception)s, and no other policy covering %(where)s allows %(origin)s.") % {
            "exception": exception,
            "where": where,
            "origin": repr(origin),
        }
    reason = _("No policy covering %(where)s (%(policies)s) allows %(origin)s.") % {
        "where": where,
        "policies": ", ".join(covering),
        "origin": repr(origin),
    }
    if len(origin) > MAX_ORIGIN_LENGTH:
        return (
            reason
            + " "
            + _("The origin is longer than %(max)d characters, so it is ignored.")
            % {"max": MAX_ORIGIN_LENGTH}
        )
    try:
        text = canonical_origin(origin)
    except DjangoValidationError as exc:
        return f"{reason} {exc.messages[0]}"
    if text != origin:
        return (
            reason
            + " "
            + _("Browsers send origins in canonical form (%(origin)s); origins are compared byte for byte.")
            % {"origin": repr(text)}
        )
    notes = _ignored(snapshot, text, path, host)
    listing = _listing_notes(text, path, host, covering, reporting, empty)
    notes += listing or []
    if listing is None and not notes:
        notes = _near_misses(text) or [_("there is no entry for this origin")]
    if notes:
        reason += " " + _("Note: %(notes)s.") % {"notes": "; ".join(notes)}
    return reason


def _listing_notes(
    origin: str, path: str, host: str | None, covering: list[str], reporting: list[str], empty: list[str]
) -> list[str] | None:
    """Why the entries listing ``origin`` do not allow it here (None: it is listed nowhere)."""
    try:
        text = canonical_origin(origin)
    except DjangoValidationError:
        return None
    listed = list(AllowedOrigin.objects.filter(origin=text).select_related("policy"))
    if not listed:
        return None
    notes = []
    now = timezone.now()
    for entry in listed:
        if not entry.enabled:
            notes.append(
                _("it is listed in policy %(policy)s but disabled") % {"policy": repr(entry.policy.name)}
            )
        elif entry.expires_at is not None and entry.expires_at <= now:
            notes.append(
                _("it is listed in policy %(policy)s but expired at %(time)s")
                % {"policy": repr(entry.policy.name), "time": entry.expires_at.isoformat()}
            )
        elif not entry.policy.enabled:
            notes.append(
                _("it is listed in policy %(policy)s, which is disabled")
                % {"policy": repr(entry.policy.name)}
            )
        elif entry.policy.name in reporting:
            notes.append(
                _("it is listed in policy %(policy)s, which is report-only")
                % {"policy": repr(entry.policy.name)}
            )
        elif entry.policy.name not in covering and not host_matches(entry.policy.hosts, host):
            notes.append(
                (
                    _("it is listed in policy %(policy)s, which applies only to the host(s) %(hosts)s")
                    if host
                    else _(
                        "it is listed in policy %(policy)s, which applies only to the host(s) %(hosts)s "
                        "(no host was given)"
                    )
                )
                % {"policy": repr(entry.policy.name), "hosts": ", ".join(entry.policy.hosts)}
            )
        elif entry.policy.name in empty and entry.effect == AllowedOrigin.DENY:
            notes.append(
                gettext("it is listed in policy %(policy)s as an exception (deny entry)")
                % {"policy": repr(entry.policy.name)}
            )
        elif entry.policy.name not in covering:
            notes.append(
                _("it is listed in policy %(policy)s, which does not cover %(path)s")
                % {"policy": repr(entry.policy.name), "path": repr(path)}
            )
    return notes


def _ignored(snapshot: Snapshot, origin: str, path: str, host: str | None) -> list[str]:
    """The entries that would allow the origin but are never honoured where they are listed:
    a wildcard on shared hosting in a policy that allows credentials (``loader``)."""
    notes = []
    now = time.time()
    for policy in snapshot.hosts.get(host):
        if policy.report or not policy.ignored or not policy.match_path(path):
            continue
        entry = EntryTable.build(policy.ignored).find(origin, now)
        if entry is None:
            continue
        platform = shared_hosting(parse_entry(entry[1]))
        notes.append(
            _(
                "%(entry)s in policy %(policy)s matches it but is not honoured: %(platform)s is a "
                "shared hosting platform where anyone can publish, and the policy allows credentials "
                "(list the hosts you own, e.g. https://yourapp.%(platform)s, and delete the wildcard)"
            )
            % {"entry": repr(entry[1]), "policy": repr(policy.name), "platform": platform}
        )
    return notes


def _near_misses(text: str) -> list[str]:
    """Entries that look like the origin but do not match it: why not, in words."""
    if text == "null":
        return []
    asked = parse_entry(text)
    notes = []
    for entry in AllowedOrigin.objects.filter(origin__contains=asked.host).select_related("policy")[:20]:
        try:
            listed = parse_entry(entry.origin)
        except DjangoValidationError:
            continue
        where = {"entry": repr(entry.origin), "policy": repr(entry.policy.name)}
        if listed.wildcard and listed.host == asked.host:
            notes.append(
                _("entry %(entry)s in policy %(policy)s matches subdomains only, not %(host)s itself")
                % {**where, "host": asked.host}
            )
        elif listed.host != asked.host:
            continue
        elif listed.scheme != asked.scheme:
            notes.append(
                _(
                    "scheme differs: entry %(entry)s in policy %(policy)s is %(listed)s://, the request is %(asked)s://"
                )
                % {**where, "listed": listed.scheme, "asked": asked.scheme}
            )
        elif listed.port != asked.port and listed.port != "*":
            notes.append(
                _("port differs: entry %(entry)s in policy %(policy)s is for port %(port)s")
                % {**where, "port": listed.port or _("default")}
            )
    return notes
