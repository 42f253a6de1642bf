"""Authentication for the REST API: DRF's token and session classes, hardened.

Name them in the host site's settings::

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "corsadmin.api.authentication.TokenAuthentication",
        "corsadmin.api.authentication.SessionAuthentication",
    ]}

- ``TokenAuthentication`` answers every refused key with the same 401 "Invalid
  token." (DRF's own says "User inactive or deleted." for the key of an
  inactive user, which tells a caller that the key exists). Failed attempts are
  throttled without a database query each (``auth_failures``): a key just refused
  is refused again from memory, and a client past its budget gets a 429. A key starting
  ``lease_`` is an origin lease's (``corsadmin.leases``): the request acts as the lease's
  own user, and ``request.auth`` is the ``LeaseToken`` (``lease_scope`` says what it may do).
- ``SessionAuthentication`` checks CSRF with corsadmin's CSRF middleware, so
  session writes trust the same origins as the rest of the site
  (``CSRF_TRUSTED_ORIGINS`` and the entries flagged ``csrf_trusted``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .. import leases
from ..middleware import CsrfViewMiddleware
from .auth_failures import failures

INVALID_TOKEN = _("Invalid token.")
TOO_MANY_FAILURES = _("Too many failed authentications from this address.")


class TokenAuthentication(authentication.TokenAuthentication):
    client = ""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        self.client = client_address(request)
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        wait = failures.wait(self.client)
        if wait is not None:
            raise exceptions.Throttled(wait, detail=str(TOO_MANY_FAILURES))
        if failures.known_bad(key):
            failures.failed(self.client)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        if leases.is_lease_key(key):
            lease = leases.find(key)
            if lease is None:  # unknown or revoked
                failures.remember_bad(key)
                failures.failed(self.client)
                raise exceptions.AuthenticationFailed(INVALID_TOKEN)
            return (lease.actor, lease)
        model: Any = self.get_model()
        try:
            token = model.objects.select_related("user").get(key=key)
        except model.DoesNotExist:
            failures.remember_bad(key)
            token = None
        if token is None or not token.user.is_active:
            failures.failed(self.client)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return (token.user, token)


def client_address(request: Request) -> str:
    """The client's address, as the throttles read it (DRF's ``NUM_PROXIES``)."""
    if api_settings.NUM_PROXIES is None:
        return str(request.META.get("REMOTE_ADDR", ""))
    return str(BaseThrottle().get_ident(request))


class CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request: Any, reason: str) -> str:
        # The failure reason instead of a response, as DRF's CSRFCheck does.
        return reason


class SessionAuthentication(authentication.SessionAuthentication):
    def enforce_csrf(self, request: Request) -> None:
        check = CSRFCheck(lambda request: None)  # type: ignore[arg-type]
        # Sets request.META["CSRF_COOKIE"], which process_view reads.
        check.process_request(request)
        reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
        if reason:
            raise exceptions.PermissionDenied(_("CSRF Failed: %(reason)s") % {"reason": reason})
