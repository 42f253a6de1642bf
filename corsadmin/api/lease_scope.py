"""What an origin lease's token may do in the API, and the 403 that names its scope otherwise.

With a lease's key (``Authorization: Token lease_...``) a request may only

- ``POST origins/``: an entry of the lease's policy (the default when ``policy`` is omitted)
  whose origin matches the lease's pattern; ``expires_at`` at most ``max_ttl`` ahead (a later
  one, or null, is a 400), now + ``max_ttl`` when omitted; an allow entry, not CSRF-trusted;
- ``DELETE origins/{id}/`` of an entry of its policy matching its pattern;
- ``GET origins/`` and ``origins/{id}/``: the list shows only such entries.

Anything else (another entry, another policy, a change, policies, import, export, check...)
is a 403 whose detail names the lease's policy and pattern. A revoked lease's key is a 401.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from ..models import AllowedOrigin, LeaseToken
from ..origins import canonical_origin
from .serializers import OriginSerializer

# The OpenAPI description of POST origins/.
CREATE_DESCRIPTION = (
    "With an origin lease's key (`Authorization: Token lease_...`): only an origin matching the "
    "lease's pattern in its policy (the default when `policy` is omitted), a 403 naming the scope "
    "otherwise; `expires_at` at most the lease's max_ttl ahead (a later one or null: 400), now + "
    "max_ttl when omitted."
)
LEASE_ACTIONS = frozenset({"create", "destroy", "list", "retrieve"})
# A client's clock and the request's own time: an expiry this close past the latest is the latest.
EXPIRY_SLACK = timedelta(seconds=5)


def lease_of(request: Request | None) -> LeaseToken | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, LeaseToken) else None


def out_of_scope(lease: LeaseToken) -> PermissionDenied:
    return PermissionDenied(
        _(
            "This token is the origin lease '%(name)s': it may only add and remove origins matching "
            "%(pattern)s in policy '%(policy)s'."
        )
        % {"name": lease.name, "pattern": lease.pattern, "policy": lease.policy.name}
    )


class LeaseRefusals:
    """For every view: a lease's request that a permission refuses is a 403 naming its scope."""

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        lease = lease_of(request)
        if lease is not None:
            raise out_of_scope(lease)
        super().permission_denied(request, message, code)  # type: ignore[misc]
        raise AssertionError("unreachable: DRF's permission_denied raises")  # pragma: no cover


class LeaseOriginSerializer(OriginSerializer):
    """An entry a lease adds: in its policy, matching its pattern, expiring within ``max_ttl``."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        lease = self.context["request"].auth
        policy = attrs.setdefault("policy", lease.policy)
        try:
            origin = canonical_origin(attrs.get("origin", ""))
        except DjangoValidationError:
            return super().validate(attrs)  # the model's validation says what is wrong: a 400
        if not lease.covers(policy.pk, origin):
            raise out_of_scope(lease)
        now = timezone.now()
        latest = lease.latest_expiry(now)
        errors: dict[str, list[str]] = {}
        wanted = attrs.get("expires_at", latest)
        if wanted is not None and latest < wanted <= latest + EXPIRY_SLACK:
            wanted = latest  # "now + max_ttl" by the client's clock
        attrs["expires_at"] = wanted
        if wanted is None or wanted > latest:
            errors["expires_at"] = [
                _("A lease's entry expires at most %(ttl)s ahead: by %(latest)s, or omit it for that.")
                % {"ttl": lease.max_ttl_text, "latest": latest.isoformat(timespec="seconds")}
            ]
        if attrs.get("effect", AllowedOrigin.ALLOW) != AllowedOrigin.ALLOW:
            errors["effect"] = [_("A lease adds allow entries only.")]
        if attrs.get("csrf_trusted"):
            errors["csrf_trusted"] = [_("A lease cannot make an entry CSRF-trusted.")]
        if "csrf" in (attrs.get("scopes") or ()):
            errors["scopes"] = [_("A lease may give the scopes cors and websocket, never csrf.")]
        if errors:
            raise serializers.ValidationError(errors)
        return super().validate(attrs)


class LeaseScopedOrigins:
    """For ``origins/``: what a lease may do there, checked before the model permissions."""

    def check_permissions(self, request: Request) -> None:
        if lease_of(request) is not None and getattr(self, "action", None) in LEASE_ACTIONS:
            return
        super().check_permissions(request)  # type: ignore[misc]

    def check_object_permissions(self, request: Request, obj: Any) -> None:
        lease = lease_of(request)
        if lease is None:
            super().check_object_permissions(request, obj)  # type: ignore[misc]
        elif not lease.covers(obj.policy_id, obj.origin):
            raise out_of_scope(lease)

    def get_serializer_class(self) -> Any:
        if lease_of(getattr(self, "request", None)) is not None:
            return LeaseOriginSerializer
        return super().get_serializer_class()  # type: ignore[misc]

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().filter_queryset(queryset)  # type: ignore[misc]
        lease = lease_of(getattr(self, "request", None))
        if lease is not None and getattr(self, "action", None) == "list":
            queryset = queryset.filter(policy_id=lease.policy_id, origin__regex=lease.parsed.regex())
        return queryset
