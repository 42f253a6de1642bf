"""Writes and questions shared by the REST API and the ``cors`` command.

Both front ends validate with the same serializers (which call the models'
``full_clean``), save through ``create``/``update``/``delete`` here (one
transaction with an admin ``LogEntry``, so the change shows in the object's
admin history), and explain decisions with ``explain`` (the snapshot's
``decide``, asked exactly as the middleware asks it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from rest_framework import serializers
from rest_framework.settings import api_settings

from . import conf, progress
from .history import change_message
from .middleware import MAX_ORIGIN_LENGTH
from .models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy
from .origins import NULL, canonical_origin, parse_entry
from .protected import guard, is_protected
from .refresh import holder
from .snapshot import ALLOW_CREDENTIALS, ALLOW_HEADERS, ALLOW_METHODS

DOCUMENT_VERSION = 1
SIMPLE_METHODS = frozenset({"GET", "HEAD", "POST"})
# Request headers a browser sends without a preflight (Content-Type only for
# form and text bodies, so a listed content-type is treated as needing one).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})

User = AbstractBaseUser | AnonymousUser | None

logger = logging.getLogger("corsadmin")


# --- validation errors -------------------------------------------------------


def drf_errors(exc: DjangoValidationError, non_field: str | None = None) -> serializers.ValidationError:
    """A model ``ValidationError`` as DRF field errors.

    ``__all__`` (e.g. a constraint) becomes ``non_field_errors``, or ``non_field``
    when the caller knows which field it is about.
    """
    if hasattr(exc, "error_dict"):
        detail: dict[str, list[str]] = {}
        for name, messages in exc.message_dict.items():
            key = name
            if name == "__all__":
                key = non_field or api_settings.NON_FIELD_ERRORS_KEY
            detail.setdefault(key, []).extend(messages)
        return serializers.ValidationError(detail)
    return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})


DUPLICATE_ORIGIN = "This origin is already listed in this policy."


def _conflict(model: type[models.Model]) -> serializers.ValidationError:
    if model is AllowedOrigin:
        return serializers.ValidationError({"origin": [DUPLICATE_ORIGIN]})
    return serializers.ValidationError({"name": ["A policy with this name already exists."]})


def error_lines(detail: Any, path: str = "") -> list[str]:
    """Flatten DRF error details into ``path: message`` lines."""
    if isinstance(detail, Mapping):
        lines = []
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif str(key).isdigit():
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            lines.extend(error_lines(value, sub))
        return lines
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [f"{path}: {item}" if path else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            if item:
                lines.extend(error_lines(item, f"{path}[{index}]"))
        return lines
    return [f"{path}: {detail}" if path else str(detail)]


def one_line(detail: Any) -> str:
    return "; ".join(error_lines(detail))


# --- history -----------------------------------------------------------------


def _user_id(user: User) -> int | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def field_values(obj: models.Model) -> dict[str, Any]:
    """The editable values of an object, to tell afterwards which ones changed."""
    values = {}
    for f in obj._meta.concrete_fields:
        if f.editable and not f.primary_key:
            values[f.name] = f.value_from_object(obj)
    return values


def changed_fields(before: Mapping[str, Any], obj: models.Model) -> list[str]:
    after = field_values(obj)
    return [name for name, value in after.items() if before.get(name) != value]


def log(
    user: User,
    objects: Iterable[models.Model],
    action: int,
    fields: Iterable[str] = (),
    before: Mapping[str, Any] | None = None,
) -> None:
    """Write admin ``LogEntry`` rows (nothing without a user: the table requires one)."""
    user_id = _user_id(user)
    objects = list(objects)
    if user_id is None or not objects:
        return
    if action == ADDITION:
        message: Any = [{"added": {}}]
    elif action == CHANGE:
        message = change_message(type(objects[0]), before or {}, field_values(objects[0]), fields)
    else:
        message = ""
    text = json.dumps(message) if message else ""
    model = type(objects[0])
    # ``log_actions`` wants a queryset; deleted rows have none, so build the rows here.
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    LogEntry.objects.bulk_create(
        LogEntry(
            user_id=user_id,
            content_type=content_type,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=action,
            change_message=text,
            action_time=timezone.now(),
        )
        for obj in objects
    )


# --- single writes -----------------------------------------------------------


def create(serializer: serializers.ModelSerializer, user: User, **extra: Any) -> models.Model:
    """Save a validated serializer as a new object, recorded in the admin history."""
    model = serializer.Meta.model
    if model is AllowedOrigin:
        extra.setdefault("created_by", user if _user_id(user) is not None else None)
    try:
        with transaction.atomic():
            obj = serializer.save(**extra)
            log(user, [obj], ADDITION)
    except IntegrityError:
        raise _conflict(model) from None
    except DjangoValidationError as exc:
        raise drf_errors(exc) from None
    return obj


def update(serializer: serializers.ModelSerializer, user: User) -> models.Model:
    model = serializer.Meta.model
    assert serializer.instance is not None  # an update's serializer is bound to its object
    before = field_values(serializer.instance)
    try:
        with transaction.atomic():
            obj = serializer.save()
            log(user, [obj], CHANGE, changed_fields(before, obj), before)
    except IntegrityError:
        raise _conflict(model) from None
    except DjangoValidationError as exc:
        raise drf_errors(exc) from None
    return obj


def delete(obj: models.Model, user: User) -> None:
    with transaction.atomic():
        pk = obj.pk
        log(user, [obj], DELETION)
        obj.delete()
        obj.pk = pk


# --- export and import -------------------------------------------------------


def export_document() -> dict[str, Any]:
    """Every policy with its origins: ``{"version": 1, "policies": [...]}``."""
    from .api.serializers import PolicyDocumentSerializer

    policies = Policy.objects.prefetch_related("origins__created_by").order_by("-priority", "name")
    serializer_class = PolicyDocumentSerializer
    if progress.active():  # the command line on a terminal: count the origins as they are written
        progress.stage("exporting", total=AllowedOrigin.objects.count())
        serializer_class = _counted_export_serializer()
    document = {
        "version": DOCUMENT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "policies": serializer_class(policies, many=True).data,
    }
    progress.done()
    return document


def _counted_export_serializer() -> Any:
    """``PolicyDocumentSerializer`` whose origins advance the progress bar."""
    from .api.serializers import OriginDocumentSerializer, PolicyDocumentSerializer

    class CountedOrigin(OriginDocumentSerializer):
        def to_representation(self, instance: Any) -> Any:
            progress.advance()
            return super().to_representation(instance)

    class CountedPolicyDocument(PolicyDocumentSerializer):
        origins = CountedOrigin(many=True, required=False)

    return CountedPolicyDocument


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    changed: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    # What is allowed but risky in the result (``AllowedOrigin.warnings()``).
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }

    def summary(self) -> str:
        parts = []
        for what, counts in self.as_dict().items():
            parts.append(f"{what} {counts['policies']} policies, {counts['origins']} origins")
        return "; ".join(parts)


class ImportRefused(Exception):
    """The document has errors; ``errors`` maps positions to DRF field errors."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(one_line(errors))
        self.errors = errors


@dataclass
class _PlannedOrigin:
    obj: AllowedOrigin
    before: dict[str, Any] | None


@dataclass
class _PlannedPolicy:
    obj: Policy
    before: dict[str, Any] | None
    origins: list[_PlannedOrigin]


def _defaults(model: type[models.Model], names: Iterable[str]) -> dict[str, Any]:
    fields = (model._meta.get_field(name) for name in names)
    return {field.name: field.get_default() for field in fields if isinstance(field, models.Field)}


def _merge(into: dict[str, Any], detail: Mapping[str, Any]) -> None:
    for key, value in detail.items():
        key = str(key)
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _set_error(errors: dict[str, Any], path: tuple[Any, ...], detail: Any) -> None:
    """Record errors at a position, e.g. ("policies", 1, "origins", 3) -> {"origin": [...]}."""
    node = errors
    for key in path[:-1]:
        node = node.setdefault(str(key), {})
    _merge(node, {str(path[-1]): _compact(detail)})


def _compact(detail: Any) -> Any:
    """DRF details as plain data; lists of per-item errors become {index: errors}."""
    if isinstance(detail, Mapping):
        return {str(k): _compact(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [str(item) for item in detail]
        return {str(i): _compact(item) for i, item in enumerate(detail) if item}
    return detail


def writable_fields(serializer_class: type[serializers.Serializer]) -> list[str]:
    return [
        name for name, fld in serializer_class().fields.items() if not fld.read_only and name != "origins"
    ]


def _plan(document: Any, replace: bool) -> list[_PlannedPolicy]:
    """Validate the whole document against the database; raise ``ImportRefused`` with every error."""
    from .api.serializers import OriginDocumentSerializer, PolicyDocumentSerializer

    errors: dict[str, Any] = {}
    if not isinstance(document, Mapping):
        raise ImportRefused(
            {api_settings.NON_FIELD_ERRORS_KEY: ['Expected a JSON object {"version": 1, "policies": [...]}.']}
        )
    version = document.get("version")
    if version is None:
        errors["version"] = ["This field is required."]
    elif version != DOCUMENT_VERSION or isinstance(version, bool):
        errors["version"] = [
            f"Unsupported version {version!r}: this server reads version {DOCUMENT_VERSION}."
        ]
    policies = document.get("policies")
    if policies is None:
        errors["policies"] = ["This field is required."]
        raise ImportRefused(errors)
    if not isinstance(policies, list):
        errors["policies"] = [f'Expected a list of policies but got type "{type(policies).__name__}".']
        raise ImportRefused(errors)

    progress.stage(
        "checking",
        total=sum(
            len(p["origins"])
            for p in policies
            if isinstance(p, Mapping) and isinstance(p.get("origins"), list)
        ),
    )
    existing = {p.name: p for p in Policy.objects.all()}
    existing_origins: dict[tuple[int | None, str], AllowedOrigin] = {
        (o.policy_id, o.origin): o for o in AllowedOrigin.objects.filter(policy__name__in=list(existing))
    }
    plan: list[_PlannedPolicy] = []
    seen_names: dict[str, int] = {}
    for i, item in enumerate(policies):
        if not isinstance(item, Mapping):
            _set_error(
                errors, ("policies", i, api_settings.NON_FIELD_ERRORS_KEY), ["Expected a policy object."]
            )
            continue
        serializer = PolicyDocumentSerializer(data={k: v for k, v in item.items() if k != "origins"})
        if not serializer.is_valid():
            _set_error(errors, ("policies", i), serializer.errors)
            policy_obj: Policy | None = None
        else:
            attrs = dict(serializer.validated_data)
            name = attrs["name"]
            if name in seen_names:
                _set_error(
                    errors,
                    ("policies", i, "name"),
                    [f"The policy '{name}' is already in this document (policies[{seen_names[name]}])."],
                )
            seen_names.setdefault(name, i)
            current = existing.pop(name, None)
            if replace:
                attrs = {**_defaults(Policy, writable_fields(PolicyDocumentSerializer)), **attrs}
            before = field_values(current) if current else None
            policy_obj = current or Policy()
            for key, value in attrs.items():
                setattr(policy_obj, key, value)
            try:
                policy_obj.full_clean(validate_unique=False)
            except DjangoValidationError as exc:
                _set_error(errors, ("policies", i), drf_errors(exc).detail)
            plan.append(_PlannedPolicy(policy_obj, before, []))
        raw_origins = item.get("origins", [])
        if raw_origins is None:
            raw_origins = []
        if not isinstance(raw_origins, list):
            _set_error(
                errors,
                ("policies", i, "origins"),
                [f'Expected a list of origins but got type "{type(raw_origins).__name__}".'],
            )
            continue
        seen_origins: dict[str, int] = {}
        for j, origin_item in enumerate(raw_origins):
            progress.advance()
            where = ("policies", i, "origins", j)
            if not isinstance(origin_item, Mapping):
                _set_error(
                    errors, (*where, api_settings.NON_FIELD_ERRORS_KEY), ["Expected an origin object."]
                )
                continue
            origin_serializer = OriginDocumentSerializer(data=origin_item)
            if not origin_serializer.is_valid():
                _set_error(errors, where, origin_serializer.errors)
                continue
            attrs = dict(origin_serializer.validated_data)
            try:
                text = canonical_origin(attrs["origin"])
            except DjangoValidationError as exc:
                _set_error(errors, (*where, "origin"), exc.messages)
                continue
            if text in seen_origins:
                _set_error(
                    errors,
                    (*where, "origin"),
                    [f"This origin is already listed in this policy (origins[{seen_origins[text]}])."],
                )
                continue
            seen_origins[text] = j
            if policy_obj is None:
                continue
            current_origin = existing_origins.get((policy_obj.pk, text)) if policy_obj.pk else None
            if replace:
                attrs = {**_defaults(AllowedOrigin, writable_fields(OriginDocumentSerializer)), **attrs}
            attrs["origin"] = text
            obj = current_origin or AllowedOrigin(policy=policy_obj)
            before = field_values(current_origin) if current_origin else None
            for key, value in attrs.items():
                setattr(obj, key, value)
            try:
                obj.full_clean(exclude={"policy", "created_by"})
            except DjangoValidationError as exc:
                _set_error(errors, where, drf_errors(exc).detail)
                continue
            if text == NULL and policy_obj.allow_credentials and not conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
                # The database still holds the policy's old flags: judge by the document's.
                _set_error(errors, (*where, "origin"), [NULL_WITH_CREDENTIALS])
                continue
            plan[-1].origins.append(_PlannedOrigin(obj, before))
    if errors:
        raise ImportRefused(errors)
    return plan


def import_document(
    document: Any, *, replace: bool = False, user: User = None, dry_run: bool = False
) -> ImportResult:
    """Apply an exported document: everything or nothing, recorded in the admin history.

    Merge (the default): policies are matched by name and origins by policy and
    canonical origin; fields a document leaves out keep their value. Replace:
    the database ends up holding exactly the document (left-out fields take
    their defaults; policies and origins it does not name are deleted).
    ``dry_run``: the same counts, and nothing changed.
    """
    result = ImportResult()
    try:
        with transaction.atomic():
            plan = _plan(document, replace)
            progress.stage("writing", total=sum(len(planned.origins) for planned in plan))
            created_origins: list[AllowedOrigin] = []
            kept_policies: list[int] = []
            kept_origins: list[int] = []
            creator = user if isinstance(user, get_user_model()) and user.is_authenticated else None
            for planned in plan:
                policy = planned.obj
                if planned.before is None:
                    policy.save()
                    log(user, [policy], ADDITION)
                    result.created["policies"] += 1
                else:
                    fields = changed_fields(planned.before, policy)
                    if fields:
                        policy.save()
                        log(user, [policy], CHANGE, fields, planned.before)
                        result.changed["policies"] += 1
                    else:
                        result.unchanged["policies"] += 1
                kept_policies.append(policy.pk)
                for planned_origin in planned.origins:
                    obj = planned_origin.obj
                    obj.policy = policy
                    if planned_origin.before is None:
                        obj.created_by = creator
                        created_origins.append(obj)
                        continue
                    progress.advance()
                    kept_origins.append(obj.pk)
                    fields = changed_fields(planned_origin.before, obj)
                    if fields:
                        obj.save()
                        log(user, [obj], CHANGE, fields, planned_origin.before)
                        result.changed["origins"] += 1
                    else:
                        result.unchanged["origins"] += 1
            if replace:
                gone_origins = list(
                    AllowedOrigin.objects.filter(policy_id__in=kept_policies).exclude(pk__in=kept_origins)
                )
                gone_policies = list(Policy.objects.exclude(pk__in=kept_policies).prefetch_related("origins"))
                log(user, gone_origins, DELETION)
                log(user, [o for p in gone_policies for o in p.origins.all()], DELETION)
                log(user, gone_policies, DELETION)
                result.deleted["origins"] = len(gone_origins) + sum(
                    len(p.origins.all()) for p in gone_policies
                )
                result.deleted["policies"] = len(gone_policies)
                AllowedOrigin.objects.filter(pk__in=[o.pk for o in gone_origins]).delete()
                Policy.objects.filter(pk__in=[p.pk for p in gone_policies]).delete()
            if created_origins:
                if connection.features.can_return_rows_from_bulk_insert:
                    created_origins = AllowedOrigin.objects.bulk_create(created_origins)
                else:
                    for obj in created_origins:
                        obj.save()
                log(user, created_origins, ADDITION)
                result.created["origins"] = len(created_origins)
                progress.advance(len(created_origins))
            progress.done()
            result.warnings = origin_warnings(p.obj.pk for p in plan if p.obj.allow_credentials)
            if dry_run:  # everything above, then undone: nothing written, nothing announced
                transaction.set_rollback(True)
    except DjangoValidationError as exc:
        # A rule the plan did not foresee, raised by a save: refused all the same.
        raise ImportRefused({api_settings.NON_FIELD_ERRORS_KEY: exc.messages}) from None
    except IntegrityError as exc:
        # The database's words name tables and constraints: for the log, not the client.
        logger.warning("corsadmin: the database refused an import: %s", str(exc).strip())
        raise ImportRefused(
            {
                api_settings.NON_FIELD_ERRORS_KEY: [
                    "The database refused the import (a concurrent change?); nothing was changed. Try again."
                ]
            }
        ) from None
    return result


def origin_warnings(policy_ids: Iterable[int]) -> list[str]:
    """The warnings of the origins of these policies (plain http:// with credentials)."""
    ids = list(policy_ids)
    if not ids:
        return []
    risky = AllowedOrigin.objects.filter(policy_id__in=ids, origin__startswith="http://").select_related(
        "policy"
    )
    return [warning for entry in risky.order_by("policy__name", "origin") for warning in entry.warnings()]


# --- the decision, explained --------------------------------------------------


def _token_list(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def explain(
    origin: str,
    path: str = "/",
    method: str = "GET",
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
) -> dict[str, Any]:
    """The middleware's decision for a request, with the reason in words.

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
    decision = guard(snapshot.decide(asked_origin, path, method, is_preflight, private_network), path)
    result: dict[str, Any] = {
        "origin": origin,
        "path": path,
        "method": method,
        "allowed": decision.allowed,
        "covered": decision.covered,
        "policy": decision.policy,
        "matched": decision.matched,
        "headers": dict(decision.headers),
        "preflight": None,
        "reason": _reason(snapshot, decision, origin, path),
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
            else guard(snapshot.decide(asked_origin, path, "OPTIONS", True, private_network), path)
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


def _reason(snapshot: Any, decision: Any, origin: str, path: str) -> str:
    if not decision.allowed and decision.covered and is_protected(path):
        raw = snapshot.decide(origin if len(origin) <= MAX_ORIGIN_LENGTH else None, path)
        if raw.allowed:
            return (
                f"Policy {raw.policy!r} allows {origin!r} with credentials, but {path!r} is the admin or "
                "corsadmin's API, which no other site may read with the user's cookies. Set "
                "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] = True if you really mean it."
            )
    if not decision.covered:
        return f"No enabled policy covers the path {path!r}: responses carry no CORS headers."
    if decision.allowed:
        return f"Allowed by policy {decision.policy!r} (entry {decision.matched!r})."
    covering = [p.name for p in snapshot.policies if p.match_path(path)]
    reason = f"No policy covering {path!r} ({', '.join(covering)}) allows {origin!r}."
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
    listed = list(AllowedOrigin.objects.filter(origin=text).select_related("policy"))
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
        elif entry.policy.name not in covering:
            notes.append(f"it is listed in policy {entry.policy.name!r}, which does not cover {path!r}")
    if not listed:
        notes = _near_misses(text) or ["there is no entry for this origin"]
    if notes:
        reason += " Note: " + "; ".join(notes) + "."
    return reason


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
