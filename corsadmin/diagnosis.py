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

from .hosts import host_matches
from .models import AllowedOrigin
from .origins import MAX_ORIGIN_LENGTH, canonical_origin, parse_entry, shared_hosting
from .protected import guard, is_protected
from .refresh import holder
from .snapshot import ALLOW_CREDENTIALS, ALLOW_HEADERS, ALLOW_METHODS, EntryTable

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
            gaps.append(f"the method {actual_method}")
        if pre.allowed and missing:
            gaps.append(f"the request header(s) {', '.join(missing)}")
        if gaps:
            result["reason"] = (
                f"{result['reason'].rstrip('.')}, but its preflight answer does not list "
                f"{' nor '.join(gaps)}, so a browser refuses the request."
            )
    return result


def _reason(snapshot: Any, decision: Any, origin: str, path: str, host: str | None = None) -> str:
    reason = _verdict(snapshot, decision, origin, path, host)
    if decision.would_refuse:
        names = ", ".join(repr(name) for name in decision.would_refuse)
        reason += (
            f" Report-only policy {names} would refuse it: enforced as it stands, it would break "
            "this request (listed in the refused origins with report: true)."
        )
    skipped = [s for s in snapshot.skipped if s.kind == "policy" or s.name == origin]
    if skipped:
        reason += (
            " Left out of the allow-list, as they cannot be compiled (written around validation; "
            "fix or delete them): " + "; ".join(s.describe() for s in skipped[:5]) + "."
        )
    return reason


def _covering(snapshot: Any, path: str, host: str | None) -> tuple[list[str], list[str], list[str]]:
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


def _verdict(snapshot: Any, decision: Any, origin: str, path: str, host: str | None) -> str:
    if not decision.allowed and decision.covered and is_protected(path):
        raw = snapshot.decide(origin if len(origin) <= MAX_ORIGIN_LENGTH else None, path, host=host)
        if raw.allowed:
            return (
                f"Policy {raw.policy!r} allows {origin!r} with credentials, but {path!r} is the admin or "
                "corsadmin's API, which no other site may read with the user's cookies. Set "
                "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] = True if you really mean it."
            )
    covering, reporting, empty = _covering(snapshot, path, host)
    where = f"{path!r}" + (f" on host {host!r}" if host else "")
    if not decision.covered:
        reason = f"No enabled policy covers the path {where}: responses carry no CORS headers."
        if reporting:
            reason += f" (Report-only {', '.join(map(repr, reporting))} never change a response.)"
        if empty:
            reason += " " + _covers_nothing(empty)
            notes = _listing_notes(origin, path, host, covering, reporting, empty)
            if notes:
                reason += " " + gettext("Note: %(notes)s.") % {"notes": "; ".join(notes)}
        return reason
    exception = ""
    if decision.denied_by:
        exception = (
            f"policy {decision.denied_policy!r} refuses it by its exception (deny entry) "
            f"{decision.denied_by!r}"
        )
    if decision.allowed:
        reason = f"Allowed by policy {decision.policy!r} (entry {decision.matched!r})."
        if exception:
            reason += f" Before it, {exception}."
        return reason
    if exception:
        return f"Refused: {exception}, and no other policy covering {where} allows {origin!r}."
    reason = f"No policy covering {where} ({', '.join(covering)}) allows {origin!r}."
    if len(origin) > MAX_ORIGIN_LENGTH:
        return reason + f" The origin is longer than {MAX_ORIGIN_LENGTH} characters, so it is ignored."
    try:
        text = canonical_origin(origin)
    except DjangoValidationError as exc:
        return f"{reason} {exc.messages[0]}"
    if text != origin:
        return (
            f"{reason} Browsers send origins in canonical form ({text!r}); origins are "
            "compared byte for byte."
        )
    notes = _ignored(snapshot, text, path, host)
    listing = _listing_notes(text, path, host, covering, reporting, empty)
    notes += listing or []
    if listing is None and not notes:
        notes = _near_misses(text) or ["there is no entry for this origin"]
    if notes:
        reason += " Note: " + "; ".join(notes) + "."
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
            notes.append(f"it is listed in policy {entry.policy.name!r} but disabled")
        elif entry.expires_at is not None and entry.expires_at <= now:
            notes.append(
                f"it is listed in policy {entry.policy.name!r} but expired at {entry.expires_at.isoformat()}"
            )
        elif not entry.policy.enabled:
            notes.append(f"it is listed in policy {entry.policy.name!r}, which is disabled")
        elif entry.policy.name in reporting:
            notes.append(f"it is listed in policy {entry.policy.name!r}, which is report-only")
        elif entry.policy.name not in covering and not host_matches(entry.policy.hosts, host):
            notes.append(
                f"it is listed in policy {entry.policy.name!r}, which applies only to the host(s) "
                f"{', '.join(entry.policy.hosts)}" + ("" if host else " (no host was given)")
            )
        elif entry.policy.name in empty and entry.effect == AllowedOrigin.DENY:
            notes.append(
                gettext("it is listed in policy %(policy)s as an exception (deny entry)")
                % {"policy": repr(entry.policy.name)}
            )
        elif entry.policy.name not in covering:
            notes.append(f"it is listed in policy {entry.policy.name!r}, which does not cover {path!r}")
    return notes


def _ignored(snapshot: Any, origin: str, path: str, host: str | None) -> list[str]:
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
            f"{entry[1]!r} in policy {policy.name!r} matches it but is not honoured: {platform} is a "
            "shared hosting platform where anyone can publish, and the policy allows credentials "
            f"(list the hosts you own, e.g. https://yourapp.{platform}, and delete the wildcard)"
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
        where = f"entry {entry.origin!r} in policy {entry.policy.name!r}"
        if listed.wildcard and listed.host == asked.host:
            notes.append(f"{where} matches subdomains only, not {asked.host} itself")
        elif listed.host != asked.host:
            continue
        elif listed.scheme != asked.scheme:
            notes.append(f"scheme differs: {where} is {listed.scheme}://, the request is {asked.scheme}://")
        elif listed.port != asked.port and listed.port != "*":
            notes.append(f"port differs: {where} is for port {listed.port or 'default'}")
    return notes
