"""Authentication for the REST API: DRF's token and session classes, hardened.

Name them in the host site's settings::

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "corsadmin.api.authentication.TokenAuthentication",
        "corsadmin.api.authentication.SessionAuthentication",
    ]}

- ``TokenAuthentication`` answers every refused key with the same 401 "Invalid
  token." (DRF's own says "User inactive or deleted." for the key of an
  inactive user, which tells a caller that the key exists).
- ``SessionAuthentication`` checks CSRF with corsadmin's CSRF middleware, so
  session writes trust the same origins as the rest of the site
  (``CSRF_TRUSTED_ORIGINS`` and the entries flagged ``csrf_trusted``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from ..middleware import CsrfViewMiddleware

INVALID_TOKEN = _("Invalid token.")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        try:
            return super().authenticate_credentials(key)
        except exceptions.AuthenticationFailed:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None


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
            raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")
