"""The CORS middleware (it asks the snapshot, never the database), a CSRF twin, and the
fetch-metadata protection of unsafe requests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.urls import get_callable
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from . import conf, cross_origin, metrics, refusals, telemetry, traffic, usage
from .hosts import request_host
from .origins import MAX_ORIGIN_LENGTH
from .protected import guard
from .refresh import holder
from .signals import check_request_enabled
from .snapshot import REFUSED, Decision, Snapshot

SIGNALS: tuple[Signal, ...] = (check_request_enabled,)
try:
    from corsheaders.signals import check_request_enabled as corsheaders_check_request_enabled
except ImportError:
    pass
else:
    SIGNALS += (corsheaders_check_request_enabled,)
logger = logging.getLogger("corsadmin")


class _Request:
    """What the decision needs from a request."""

    __slots__ = ("origin", "path", "method", "preflight", "private_network", "request", "host", "vary")

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        meta = request.META
        origin: str | None = meta.get("HTTP_ORIGIN")
        self.origin = origin if origin is None or len(origin) <= MAX_ORIGIN_LENGTH else None
        self.path = request.path_info
        self.method = request.method or "GET"
        self.preflight = self.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in meta
        self.private_network = meta.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true"
        self.host: str | None = None
        # The Vary field name when the ``CORS_*`` settings decided through a receiver.
        self.vary: str | None = None

    def decide(self, snapshot: Snapshot) -> Decision:
        # The Host only when some policy names hosts (asking Django to validate it costs).
        self.host = host = request_host(self.request) if snapshot.hosts.scoped else None
        decision = snapshot.decide(
            self.origin, self.path, self.method, self.preflight, self.private_network, host
        )
        return guard(decision, self.path) if decision.allowed else decision

    def decide_enabled(self, snapshot: Snapshot) -> Decision:
        self.vary = "origin"  # the settings' answer: as django-cors-headers writes it
        return snapshot.allowed_by_receiver(self.origin, self.method, self.preflight, self.private_network)

    def decide_not_enabled(self, snapshot: Snapshot, decision: Decision) -> Decision:
        """A request no receiver enabled, while one is connected: covered where
        ``CORS_URLS_REGEX`` matches, as django-cors-headers covers it whatever the receivers
        answer (``Vary``, a preflight answered), even with no origin setting (then no database
        policy that allows nothing covers the path)."""
        fallback = snapshot.fallback
        if decision.covered or fallback is None or not fallback.match_path(self.path):
            return decision
        self.vary = "origin"
        return REFUSED

    def note_refusal(self, request: HttpRequest, decision: Decision, snapshot: Snapshot) -> None:
        """Count a refused cross-origin request (a same-origin one is not a refusal), or
        the report-only policies that would have refused an allowed one: one count each in
        ``corsadmin.refusals``, for telemetry and usage alike."""
        origin = self.origin
        if decision.allowed:
            if decision.would_refuse and telemetry.ENABLED and self.cross_origin(request):
                for policy in decision.would_refuse:
                    refusals.count(origin, self.path, None, policy)  # type: ignore[arg-type]
            return
        if not decision.covered or not origin:
            return
        host: str | None = request.META.get("HTTP_HOST")
        # (cross_origin, inline: a flood of refusals comes this way)
        if (host and not origin.endswith(host)) or origin != _own_origin(request):
            # The policy usage counts it for: known to a refusal decide() made.
            counted = (
                (decision.counted or usage.covering(snapshot, self.path, self.host))
                if usage.ENABLED
                else None
            )
            # The Host header (read above) only for traffic: with it, a refusal is one key per host.
            host = (host or request.META.get("SERVER_NAME")) if traffic.ENABLED else None
            if telemetry.ENABLED:
                refusals.count(origin, self.path, counted, "", host)
            elif counted is not None or host is not None:
                refusals.count(origin, self.path, counted, None, host)

    def cross_origin(self, request: HttpRequest) -> bool:
        """An Origin that is not the site's own (a same-origin request is not a refusal)."""
        if not self.origin:
            return False
        host: str | None = request.META.get("HTTP_HOST")
        if host and not self.origin.endswith(host):  # cannot be our own origin: skip building it
            return True
        return self.origin != _own_origin(request)


def _own_origin(request: HttpRequest) -> str:
    scheme = "https" if request.is_secure() else "http"
    host = request.META.get("HTTP_HOST")
    if not host:
        host = request.META.get("SERVER_NAME", "")
        port = str(request.META.get("SERVER_PORT", ""))
        if port and port != ("443" if scheme == "https" else "80"):
            host = f"{host}:{port}"
    return f"{scheme}://{host}"


# The first and the last of SIGNALS (one Signal twice without django-cors-headers): whether a
# receiver is connected is tested inline, on every request not allowed (no call, no loop).
_FIRST, _LAST = SIGNALS[0], SIGNALS[-1]


def _enabled(responses: Sequence[tuple[object, object]]) -> bool:
    """Whether a receiver said yes; a receiver that raised is logged, never a 500."""
    enabled = False
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error(
                "corsadmin: check_request_enabled receiver %r raised %r",
                receiver,
                result,
                extra={"event": "receiver_failed"},
            )
        elif result:
            enabled = True
    return enabled


def _enabled_by_receiver(request: HttpRequest) -> bool:
    return any(_enabled(signal.send_robust(sender=None, request=request)) for signal in SIGNALS)


async def _aenabled_by_receiver(request: HttpRequest) -> bool:
    for signal in SIGNALS:
        if _enabled(await signal.asend_robust(sender=None, request=request)):
            return True
    return False


def _preflight_response() -> HttpResponse:
    response = HttpResponse()
    response["Content-Length"] = "0"
    return response


# (snapshot, the Vary field name for it): recomputed once per snapshot, not per request.
_vary_for: tuple[Snapshot | None, str] = (None, "Origin")


def _vary_field(snapshot: Snapshot) -> str:
    """``origin`` as django-cors-headers writes it when the ``CORS_*`` settings policy is in
    use (drop-in mode), ``Origin`` otherwise. Field names are case-insensitive; the exact
    text matters only to tests written for django-cors-headers."""
    global _vary_for
    cached_snapshot, field_name = _vary_for
    if cached_snapshot is not snapshot:
        dropin = snapshot.fallback is not None and any(p is snapshot.fallback for p in snapshot.policies)
        field_name = "origin" if dropin else "Origin"
        _vary_for = (snapshot, field_name)
    return field_name


def _finish(response: HttpResponse, decision: Decision, vary: str = "Origin") -> HttpResponse:
    if decision.covered:
        if "Vary" in response.headers:
            patch_vary_headers(response, (vary,))
        else:  # what patch_vary_headers would write, without its parsing (the common case)
            response.headers["Vary"] = vary
        for name, value in decision.headers.items():
            response[name] = value
    return response


class CorsMiddleware:
    """Adds CORS headers from the snapshot; answers preflights on covered paths."""

    sync_capable = True
    async_capable = True

    # Any: an HttpResponse, or an awaitable of one in async mode (told apart at run time).
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.async_mode:
            return self.__acall__(request)
        asked = _Request(request)
        snapshot = holder.get()
        decision = asked.decide(snapshot)
        if not decision.allowed and (_FIRST.receivers or _LAST.receivers):
            if asked.origin and _enabled_by_receiver(request):
                decision = asked.decide_enabled(snapshot)
            else:
                decision = asked.decide_not_enabled(snapshot, decision)
        request._cors_enabled = decision.covered  # type: ignore[attr-defined]  # as django-cors-headers
        request._cors_snapshot = snapshot  # type: ignore[attr-defined]  # which one decided (diagnostics)
        if asked.origin:  # (no Origin: nothing to count)
            asked.note_refusal(request, decision, snapshot)
        if usage.ENABLED:
            if decision.allowed:
                usage.allowed(decision.policy, decision.entry_id)
            if decision.denied_id is not None:
                usage.denied(decision.denied_id)
        if traffic.ENABLED and decision.allowed and asked.origin:
            traffic.seen(asked.origin, asked.path, request.META)
        if metrics.ENABLED:
            metrics.count(decision, asked, request)
        vary = asked.vary or _vary_field(snapshot)
        if asked.preflight and decision.covered:
            return _finish(_preflight_response(), decision, vary)
        return _finish(self.get_response(request), decision, vary)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        asked = _Request(request)
        snapshot = await holder.aget()
        decision = asked.decide(snapshot)
        if not decision.allowed and (_FIRST.receivers or _LAST.receivers):
            if asked.origin and await _aenabled_by_receiver(request):
                decision = asked.decide_enabled(snapshot)
            else:
                decision = asked.decide_not_enabled(snapshot, decision)
        request._cors_enabled = decision.covered  # type: ignore[attr-defined]  # as django-cors-headers
        request._cors_snapshot = snapshot  # type: ignore[attr-defined]  # which one decided (diagnostics)
        if asked.origin:  # (no Origin: nothing to count)
            asked.note_refusal(request, decision, snapshot)
        if usage.ENABLED:
            if decision.allowed:
                usage.allowed(decision.policy, decision.entry_id)
            if decision.denied_id is not None:
                usage.denied(decision.denied_id)
        if traffic.ENABLED and decision.allowed and asked.origin:
            traffic.seen(asked.origin, asked.path, request.META)
        if metrics.ENABLED:
            metrics.count(decision, asked, request)
        vary = asked.vary or _vary_field(snapshot)
        if asked.preflight and decision.covered:
            return _finish(_preflight_response(), decision, vary)
        return _finish(await self.get_response(request), decision, vary)


class CsrfViewMiddleware(DjangoCsrfViewMiddleware):
    """Django's CSRF middleware, also trusting origins flagged ``csrf_trusted`` on the paths
    (and hosts) their policy covers.

    Put it where Django's would be; ``CSRF_TRUSTED_ORIGINS`` keeps working.
    """

    def _origin_verified(self, request: HttpRequest) -> bool:
        if super()._origin_verified(request):  # type: ignore[misc]  # not in django-stubs
            return True
        origin: str | None = request.META.get("HTTP_ORIGIN")
        # Never "null" (any sandboxed page sends it), even if a row says so.
        if not origin or origin == "null":
            return False
        snapshot = holder.get()
        host = request_host(request) if snapshot.hosts.scoped else None
        return snapshot.csrf_trusts(origin, request.path_info, host)


class CrossOriginProtectionMiddleware(MiddlewareMixin):
    """Refuses unsafe requests a browser sends from an untrusted origin, token-free, from
    ``Sec-Fetch-Site`` and ``Origin`` (``corsadmin.cross_origin`` has the decision): a 403 from
    ``CSRF_FAILURE_VIEW``. ``CORSADMIN["CROSS_ORIGIN_EXEMPT_PATHS"]`` and
    ``@cross_origin_exempt`` exempt; ``CORSADMIN["CROSS_ORIGIN_REPORT_ONLY"]`` only logs.
    """

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self._csrf = CsrfViewMiddleware(get_response)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: object, kwargs: object
    ) -> HttpResponse | None:
        reason = cross_origin.refusal(request, self._csrf._origin_verified)
        if reason is None or cross_origin.exempt(request, view):
            return None
        report_only = bool(conf.get("CROSS_ORIGIN_REPORT_ONLY"))
        logger.warning(
            "corsadmin: %s %s %s%s",
            "would refuse" if report_only else "refused",
            request.method,
            request.path_info,
            f" ({reason})",
            extra={"event": "cross_origin_refused", "report": report_only, "status_code": 403},
        )
        if report_only:
            return None
        return get_callable(settings.CSRF_FAILURE_VIEW)(request, reason=reason)  # type: ignore[no-any-return]
