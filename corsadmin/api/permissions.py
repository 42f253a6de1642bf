"""Django's model permissions, reading included.

DRF's ``DjangoModelPermissions`` lets any logged-in user read; here GET, HEAD
and OPTIONS need ``view_<model>`` as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request

from .params import flag

if TYPE_CHECKING:  # not at run time: rest_framework.views reads the permission classes
    from rest_framework.views import APIView

VIEW_ORIGINS = "corsadmin.view_allowedorigin"
VIEW_POLICIES = "corsadmin.view_policy"
PROBE_EDGE = "corsadmin.probe_edge"


class ModelPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class RequirePerms(BasePermission):
    """An authenticated user holding every permission ``required(request)`` names."""

    perms: tuple[str, ...] = ()

    def required(self, request: Request) -> tuple[str, ...]:
        return self.perms

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return user.has_perms(self.required(request))


class CanViewOrigins(RequirePerms):
    """check/ and blocked/: reading the allow-list."""

    perms = (VIEW_ORIGINS,)


class CanViewMetrics(RequirePerms):
    """/metrics/: the policies' names and traffic."""

    perms = (VIEW_POLICIES,)


class CanProbe(RequirePerms):
    """probe/: requests sent from the server (a permission of its own), and corsadmin's decision
    shown beside them (reading the allow-list)."""

    perms = (PROBE_EDGE, VIEW_ORIGINS)


class CanExport(RequirePerms):
    perms = (VIEW_POLICIES, VIEW_ORIGINS)


class CanImport(RequirePerms):
    """import/: add and change policies and origins; with ``?replace=true`` also delete."""

    def required(self, request: Request) -> tuple[str, ...]:
        if request.method in SAFE_METHODS:
            return (VIEW_POLICIES, VIEW_ORIGINS)
        perms = [
            f"corsadmin.{action}_{model}"
            for action in ("add", "change")
            for model in ("policy", "allowedorigin")
        ]
        if replace_requested(request):
            perms += ["corsadmin.delete_policy", "corsadmin.delete_allowedorigin"]
        return tuple(perms)


def replace_requested(request: Request) -> bool:
    return flag(request.query_params.get("replace", "")) is True
