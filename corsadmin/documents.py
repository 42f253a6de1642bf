"""The allow-list as one JSON document: export, and import all or nothing.

``{"version": 1, "exported_at": ..., "policies": [{..., "origins": [...]}]}`` with the
API's field names. Used by the REST API (``/export/``, ``/import/``) and the ``cors``
command alike; every write is recorded in the admin history (``corsadmin.history``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.settings import api_settings

from . import budget, conf, history, progress, writes
from .errors import one_line
from .history import User, changed_fields, field_values, log_addition, log_change, log_deletion, user_id
from .models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy, shared_hosting_wildcards
from .origins import NULL, canonical_origin, shared_hosting_refusal
from .serializers import OriginSerializer, PolicySerializer, SlugField, drf_errors

DOCUMENT_VERSION = 1

logger = logging.getLogger("corsadmin")


# --- the document's serializers ------------------------------------------------------


class OriginDocumentSerializer(OriginSerializer):
    """An origin inside its policy in the document (the policy is the enclosing one).

    No ``hits`` or ``last_seen``: usage is not configuration, and an import leaves it alone."""

    clean_with_model = False  # the import validates against the database as a whole
    boolean_defaults = False

    class Meta(OriginSerializer.Meta):
        # The API's fields but the row id, the policy (the document nests origins in their
        # policy) and what is not configuration (usage, warnings).
        fields = tuple(
            name
            for name in OriginSerializer.Meta.fields
            if name not in {"id", "policy", "hits", "last_seen", "status", "warnings"}
        )


class PolicyDocumentSerializer(PolicySerializer):
    clean_with_model = False
    boolean_defaults = False
    # Matched by name on import, so no uniqueness check here.
    name = SlugField(max_length=64)
    origins = OriginDocumentSerializer(many=True, required=False)

    class Meta(PolicySerializer.Meta):
        fields = (*(f for f in PolicySerializer.Meta.fields if f != "warnings"), "origins")


class DocumentSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=1, help_text="Always 1.")
    exported_at = serializers.DateTimeField(read_only=True)
    policies = PolicyDocumentSerializer(many=True)


# --- export --------------------------------------------------------------------------


def export_document() -> dict[str, Any]:
    """Every policy with its origins: ``{"version": 1, "policies": [...]}``."""
    policies = Policy.objects.prefetch_related("origins__created_by").order_by("-priority", "name")
    serializer_class = PolicyDocumentSerializer
    if progress.active():  # the command line on a terminal: count the origins as they are written
        progress.stage("exporting", total=AllowedOrigin.objects.count())
    if progress.active() or budget.remaining() is not None:
        serializer_class = _counted_export_serializer()
    document = {
        "version": DOCUMENT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "policies": serializer_class(policies, many=True).data,
    }
    progress.done()
    return document


def _counted_export_serializer() -> Any:
    """``PolicyDocumentSerializer`` whose origins advance the progress bar and check the clock."""

    class CountedOrigin(OriginDocumentSerializer):
        def to_representation(self, instance: Any) -> Any:
            progress.advance()
            budget.check(_export_out_of_time)
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
    # Of a dry run only: each row it would write, ("add" | "change" | "remove", the row in
    # words, what changes: "Enabled: yes → no; ..." or "").
    rows: list[tuple[str, str, str]] = field(default_factory=list)

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


def _export_out_of_time() -> str:
    return _(
        "The export was stopped before the server's time limit for a request. Export with the "
        "command line instead (python manage.py cors export), which has no time limit, or raise "
        "the server's timeout."
    )


class _Clock:
    """The import's checks of the time it has left (``budget``), saying where it stopped."""

    def __init__(self) -> None:
        self.stage = "checking"
        self.done = 0
        self.total = 0

    def start(self, stage: str, total: int) -> None:
        self.stage, self.done, self.total = stage, 0, total

    def check(self, steps: int = 0) -> None:
        self.done += steps
        budget.check(self.message)

    def message(self) -> str:
        where = (
            _("while checking the document (origin %(done)d of %(total)d)")
            if self.stage == "checking"
            else _("while writing (origin %(done)d of %(total)d)")
        )
        return _(
            "The import was stopped %(where)s, before the server's time limit for a request: "
            "nothing was changed. Import this document with the command line (python manage.py "
            "cors import FILE), which has no time limit, or split it into smaller documents, or "
            "raise the server's timeout."
        ) % {"where": where % {"done": self.done, "total": self.total}}


class ImportRefused(Exception):
    """The document has errors; ``errors`` maps positions to DRF field errors."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(one_line(errors))
        self.errors = errors


def _origin_words(origin: AllowedOrigin, policy: Policy) -> str:
    return f"origin {origin.origin} in policy '{policy.name}'"


def _values(
    model: type[models.Model], before: Mapping[str, Any], obj: models.Model, fields: list[str]
) -> str:
    """ "Enabled: yes → no; Note: - → hi", as the admin history words a change."""
    after = field_values(obj)
    return "; ".join(
        f"{history.label(model, name)}: {history.text(before.get(name))} → {history.text(after.get(name))}"
        for name in fields
        if name != "policy"
    )


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


def _plan(document: Any, replace: bool, clock: _Clock | None = None) -> list[_PlannedPolicy]:
    """Validate the whole document against the database; raise ``ImportRefused`` with every error."""
    errors: dict[str, Any] = {}
    if not isinstance(document, Mapping):
        raise ImportRefused(
            {
                api_settings.NON_FIELD_ERRORS_KEY: [
                    _('Expected a JSON object {"version": 1, "policies": [...]}.')
                ]
            }
        )
    version = document.get("version")
    if version is None:
        errors["version"] = [_("This field is required.")]
    elif version != DOCUMENT_VERSION or isinstance(version, bool):
        errors["version"] = [
            _("Unsupported version %(version)s: this server reads version %(supported)d.")
            % {"version": repr(version), "supported": DOCUMENT_VERSION}
        ]
    policies = document.get("policies")
    if policies is None:
        errors["policies"] = [_("This field is required.")]
        raise ImportRefused(errors)
    if not isinstance(policies, list):
        errors["policies"] = [
            _('Expected a list of policies but got type "%(type)s".') % {"type": type(policies).__name__}
        ]
        raise ImportRefused(errors)

    total = sum(
        len(p["origins"]) for p in policies if isinstance(p, Mapping) and isinstance(p.get("origins"), list)
    )
    progress.stage("checking", total=total)
    clock = clock or _Clock()
    clock.start("checking", total)
    # One serializer of each kind for the whole document, as DRF's ``many=True`` does: building
    # a serializer's fields costs more than validating an item with them.
    policy_serializer = PolicyDocumentSerializer()
    origin_serializer = OriginDocumentSerializer()
    policy_fields = writable_fields(PolicyDocumentSerializer)  # replace: what takes its default
    origin_fields = writable_fields(OriginDocumentSerializer)
    existing = {p.name: p for p in Policy.objects.all()}
    existing_origins: dict[tuple[int | None, str], AllowedOrigin] = {
        (o.policy_id, o.origin): o for o in AllowedOrigin.objects.filter(policy__name__in=list(existing))
    }
    plan: list[_PlannedPolicy] = []
    seen_names: dict[str, int] = {}
    for i, item in enumerate(policies):
        if not isinstance(item, Mapping):
            _set_error(
                errors, ("policies", i, api_settings.NON_FIELD_ERRORS_KEY), [_("Expected a policy object.")]
            )
            continue
        clock.check()
        policy_data = _validated(policy_serializer, {k: v for k, v in item.items() if k != "origins"})
        if isinstance(policy_data, serializers.ValidationError):
            _set_error(errors, ("policies", i), policy_data.detail)
            policy_obj: Policy | None = None
        else:
            attrs = dict(policy_data)
            name = attrs["name"]
            if name in seen_names:
                _set_error(
                    errors,
                    ("policies", i, "name"),
                    [
                        _("The policy '%(name)s' is already in this document (policies[%(index)d]).")
                        % {"name": name, "index": seen_names[name]}
                    ],
                )
            seen_names.setdefault(name, i)
            current = existing.pop(name, None)
            if replace:
                attrs = {**_defaults(Policy, policy_fields), **attrs}
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
            clock.check(1)
            where = ("policies", i, "origins", j)
            if not isinstance(origin_item, Mapping):
                _set_error(
                    errors, (*where, api_settings.NON_FIELD_ERRORS_KEY), [_("Expected an origin object.")]
                )
                continue
            origin_data = _validated(origin_serializer, origin_item)
            if isinstance(origin_data, serializers.ValidationError):
                _set_error(errors, where, origin_data.detail)
                continue
            attrs = dict(origin_data)
            try:
                text = canonical_origin(attrs["origin"])
            except DjangoValidationError as exc:
                _set_error(errors, (*where, "origin"), exc.messages)
                continue
            if text in seen_origins:
                _set_error(
                    errors,
                    (*where, "origin"),
                    [
                        _("This origin is already listed in this policy (origins[%(index)d]).")
                        % {"index": seen_origins[text]}
                    ],
                )
                continue
            seen_origins[text] = j
            if policy_obj is None:
                continue
            current_origin = existing_origins.get((policy_obj.pk, text)) if policy_obj.pk else None
            if replace:
                attrs = {**_defaults(AllowedOrigin, origin_fields), **attrs}
            attrs["origin"] = text
            obj = current_origin or AllowedOrigin(policy=policy_obj)
            before = field_values(current_origin) if current_origin else None
            for key, value in attrs.items():
                setattr(obj, key, value)
            try:
                # A restore keeps what the backup held: an expired entry stays, expiry and all.
                obj.full_clean(exclude={"policy", "created_by", "expires_at"})
            except DjangoValidationError as exc:
                _set_error(errors, where, drf_errors(exc).detail)
                continue
            if text == NULL and policy_obj.allow_credentials and not conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
                # The database still holds the policy's old flags: judge by the document's.
                _set_error(errors, (*where, "origin"), [str(NULL_WITH_CREDENTIALS)])
                continue
            credentials = policy_obj.allow_credentials and not obj.is_deny
            hosted = shared_hosting_wildcards([text]) if credentials else []
            if hosted:  # judged by the document's flags, as above
                _set_error(errors, (*where, "origin"), [shared_hosting_refusal(*hosted[0])])
                continue
            plan[-1].origins.append(_PlannedOrigin(obj, before))
    if errors:
        raise ImportRefused(errors)
    return plan


def _validated(serializer: serializers.Serializer, data: Any) -> Any:
    """``data`` validated by ``serializer`` (reused for every item), or its ``ValidationError``."""
    try:
        return serializer.run_validation(data)
    except serializers.ValidationError as exc:
        return exc


def import_document(
    document: Any, *, replace: bool = False, user: User = None, dry_run: bool = False
) -> ImportResult:
    """Apply an exported document: everything or nothing, recorded in the admin history.

    Merge (the default): policies are matched by name and origins by policy and
    canonical origin; fields a document leaves out keep their value. Replace:
    the database ends up holding exactly the document (left-out fields take
    their defaults; policies and origins it does not name are deleted).
    ``dry_run``: the same counts and the rows it would write (``rows``), and nothing changed.
    """
    result = ImportResult()
    clock = _Clock()  # with a time limit (``budget``, the API's), stops in time: all rolled back
    try:
        # A write: planned and applied with the generation row locked first (``writes``).
        with transaction.atomic() if dry_run else writes.writing():
            plan = _plan(document, replace, clock)
            writing = sum(len(planned.origins) for planned in plan)
            progress.stage("writing", total=writing)
            clock.start("writing", writing)
            created_origins: list[AllowedOrigin] = []
            kept_policies: list[int] = []
            kept_origins: list[int] = []
            creator = user if user_id(user) is not None else None
            for planned in plan:
                policy = planned.obj
                if planned.before is None:
                    policy.save()
                    log_addition(user, [policy])
                    result.created["policies"] += 1
                    if dry_run:
                        result.rows.append(("add", f"policy '{policy.name}'", ""))
                else:
                    fields = changed_fields(planned.before, policy)
                    if fields:
                        policy.save()
                        log_change(user, policy, planned.before, fields)
                        result.changed["policies"] += 1
                        if dry_run:
                            values = _values(Policy, planned.before, policy, fields)
                            result.rows.append(("change", f"policy '{policy.name}'", values))
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
                    clock.check(1)
                    kept_origins.append(obj.pk)
                    fields = changed_fields(planned_origin.before, obj)
                    if fields:
                        obj.save()
                        log_change(user, obj, planned_origin.before, fields)
                        result.changed["origins"] += 1
                        if dry_run:
                            values = _values(AllowedOrigin, planned_origin.before, obj, fields)
                            result.rows.append(("change", _origin_words(obj, policy), values))
                    else:
                        result.unchanged["origins"] += 1
            clock.check()
            if replace:
                gone_origins = list(
                    AllowedOrigin.objects.filter(policy_id__in=kept_policies).exclude(pk__in=kept_origins)
                )
                gone_policies = list(Policy.objects.exclude(pk__in=kept_policies).prefetch_related("origins"))
                log_deletion(user, gone_origins)
                log_deletion(user, [o for p in gone_policies for o in p.origins.all()])
                log_deletion(user, gone_policies)
                result.deleted["origins"] = len(gone_origins) + sum(
                    len(p.origins.all()) for p in gone_policies
                )
                result.deleted["policies"] = len(gone_policies)
                if dry_run:
                    names: dict[Any, Policy] = {p.obj.pk: p.obj for p in plan}
                    result.rows += [
                        ("remove", _origin_words(o, names[o.policy_id]), "") for o in gone_origins
                    ]
                    for gone in gone_policies:
                        result.rows.append(("remove", f"policy '{gone.name}'", ""))
                        result.rows += [("remove", _origin_words(o, gone), "") for o in gone.origins.all()]
                AllowedOrigin.objects.filter(pk__in=[o.pk for o in gone_origins]).delete()
                Policy.objects.filter(pk__in=[p.pk for p in gone_policies]).delete()
            if created_origins:
                clock.check()
                # One statement (one generation): on PostgreSQL the API's query deadline, set to
                # the time left, cuts it when it would run past (``deadlines``).
                if connection.features.can_return_rows_from_bulk_insert:
                    created_origins = AllowedOrigin.objects.bulk_create(created_origins)
                else:
                    for obj in created_origins:
                        clock.check(1)
                        obj.save()
                clock.check()
                log_addition(user, created_origins)
                result.created["origins"] = len(created_origins)
                if dry_run:
                    result.rows += [("add", _origin_words(o, o.policy), "") for o in created_origins]
                progress.advance(len(created_origins))
            progress.done()
            result.warnings = origin_warnings(
                (p.obj.pk for p in plan if p.obj.allow_credentials), (p.obj.pk for p in plan)
            )
            clock.check()  # the last moment to stop: the commit and the answer are left
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
                    _(
                        "The database refused the import (a concurrent change?); nothing was changed. "
                        "Try again."
                    )
                ]
            }
        ) from None
    return result


def origin_warnings(policy_ids: Iterable[int], all_policy_ids: Iterable[int] = ()) -> list[str]:
    """The warnings of the origins of these policies: plain http:// with credentials (policies
    ``policy_ids``), wildcards on shared hosting (``all_policy_ids``)."""
    ids, every = list(policy_ids), list(all_policy_ids)
    if not ids and not every:
        return []
    risky = AllowedOrigin.objects.filter(
        models.Q(policy_id__in=ids, origin__startswith="http://")
        | models.Q(policy_id__in=every, origin__contains="*.")
    ).select_related("policy")
    return [warning for entry in risky.order_by("policy__name", "origin") for warning in entry.warnings()]
