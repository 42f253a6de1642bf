"""The import document checked against the database as a whole: every error with its position,
or the plan of what an import writes (``corsadmin.documents`` applies it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.translation import gettext as _

from . import budget, conf, progress
from .errors import model_errors, one_line
from .fields import Field, Refusal, check, non_field_key
from .history import changed_fields, field_values
from .models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy, shared_hosting_wildcards
from .origins import NULL, canonical_origin, shared_hosting_refusal
from .records import origin_fields, policy_fields, with_scope_flags

DOCUMENT_VERSION = 1


class Clock:
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


@dataclass
class PlannedOrigin:
    obj: AllowedOrigin | None  # None: a stored origin the document leaves as it is
    before: dict[str, Any] | None  # a stored origin's values (``field_values``)
    fields: list[str] = field(default_factory=list)  # of a stored origin: the fields that change
    pk: int | None = None  # of a stored origin


class StoredOrigins:
    """The stored origins as rows of plain values, by (policy pk, origin): an import of 100,000
    makes a model object only of those it changes."""

    def __init__(self, policy_names: list[str]) -> None:
        fields = AllowedOrigin._meta.concrete_fields
        self.attnames = [f.attname for f in fields]
        self.editable = [(f.name, i) for i, f in enumerate(fields) if f.editable and not f.primary_key]
        self.pk_at = self.attnames.index(AllowedOrigin._meta.pk.attname)
        policy_at, origin_at = self.attnames.index("policy_id"), self.attnames.index("origin")
        query = AllowedOrigin.objects.filter(policy__name__in=policy_names).order_by()
        self.db = query.db
        self.rows = {
            (row[policy_at], row[origin_at]): row
            for row in query.values_list(*self.attnames).iterator(chunk_size=10_000)
        }

    def get(self, policy_pk: Any, origin: Any) -> tuple[Any, ...] | None:
        return self.rows.get((policy_pk, origin)) if policy_pk is not None else None

    def values(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """What ``field_values`` says of the row's object."""
        return {name: row[i] for name, i in self.editable}

    def obj(self, row: tuple[Any, ...]) -> AllowedOrigin:
        return AllowedOrigin.from_db(self.db, self.attnames, row)


@dataclass
class PlannedPolicy:
    obj: Policy
    before: dict[str, Any] | None
    origins: list[PlannedOrigin]


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


def plan(document: Any, replace: bool, clock: Clock | None = None) -> list[PlannedPolicy]:
    """Validate the whole document against the database; raise ``ImportRefused`` with every error."""
    errors: dict[str, Any] = {}
    if not isinstance(document, Mapping):
        raise ImportRefused(
            {non_field_key(): [_('Expected a JSON object {"version": 1, "policies": [...]}.')]}
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
    clock = clock or Clock()
    clock.start("checking", total)
    # One set of fields of each kind for the whole document.
    policy_rules = policy_fields()
    origin_rules = origin_fields()
    # replace: what takes its default (the model's flags for ``scopes``)
    policy_names = list(policy_rules)
    origin_names = [name for name in origin_rules if name != "scopes"] + ["cors", "websocket"]
    existing = {p.name: p for p in Policy.objects.all()}
    stored = StoredOrigins(list(existing))
    origin_field = AllowedOrigin._meta.get_field("origin")
    plan: list[PlannedPolicy] = []
    seen_names: dict[str, int] = {}
    for i, item in enumerate(policies):
        if not isinstance(item, Mapping):
            _set_error(errors, ("policies", i, non_field_key()), [_("Expected a policy object.")])
            continue
        clock.check()
        policy_data = _validated(policy_rules, {k: v for k, v in item.items() if k != "origins"})
        if isinstance(policy_data, Refusal):
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
                attrs = {**_defaults(Policy, policy_names), **attrs}
            before = field_values(current) if current else None
            policy_obj = current or Policy()
            for key, value in attrs.items():
                setattr(policy_obj, key, value)
            try:
                policy_obj.full_clean(validate_unique=False)
            except DjangoValidationError as exc:
                _set_error(errors, ("policies", i), model_errors(exc))
            plan.append(PlannedPolicy(policy_obj, before, []))
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
                _set_error(errors, (*where, non_field_key()), [_("Expected an origin object.")])
                continue
            origin_data = _validated(origin_rules, origin_item)
            if isinstance(origin_data, Refusal):
                _set_error(errors, where, origin_data.detail)
                continue
            try:
                attrs = with_scope_flags(origin_data)
            except DjangoValidationError as exc:
                _set_error(errors, where, model_errors(exc))
                continue
            row = stored.get(policy_obj.pk if policy_obj is not None else None, attrs["origin"])
            try:
                # Stored origins are canonical: one spelled as stored needs no parsing again.
                text = attrs["origin"] if row else canonical_origin(attrs["origin"])
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
            row = row or stored.get(policy_obj.pk, text)
            if replace:
                attrs = {**_defaults(AllowedOrigin, origin_names), **attrs}
            attrs["origin"] = text
            before = stored.values(row) if row else None
            obj: AllowedOrigin | None = None
            if before is not None and all(key in before and before[key] == v for key, v in attrs.items()):
                # Stored and left as it is: checked when it was written. Only what depends on
                # the policy's flags is judged again (below).
                changes: list[str] | None = []
                deny = before["effect"] == AllowedOrigin.DENY
            else:
                obj = stored.obj(row) if row else AllowedOrigin(policy=policy_obj)
                for key, value in attrs.items():
                    setattr(obj, key, value)
                try:
                    _full_clean(obj, origin_field, text)
                except DjangoValidationError as exc:
                    _set_error(errors, where, model_errors(exc))
                    continue
                changes = changed_fields(before, obj) if before is not None else None
                deny = obj.is_deny
            if text == NULL and policy_obj.allow_credentials and not conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
                # The database still holds the policy's old flags: judge by the document's.
                _set_error(errors, (*where, "origin"), [str(NULL_WITH_CREDENTIALS)])
                continue
            credentials = policy_obj.allow_credentials and not deny
            hosted = shared_hosting_wildcards([text]) if credentials else []
            if hosted:  # judged by the document's flags, as above
                _set_error(errors, (*where, "origin"), [shared_hosting_refusal(*hosted[0])])
                continue
            pk = row[stored.pk_at] if row else None
            plan[-1].origins.append(PlannedOrigin(obj, before, changes or [], pk))
    if errors:
        raise ImportRefused(errors)
    return plan


def _full_clean(obj: AllowedOrigin, origin_field: Any, text: str) -> None:
    """``obj.full_clean`` of an import, its origin ``text`` canonical already: only the field's
    length is left to check there; the policy is left out, so no uniqueness check would run (the
    database's constraint checks it) and an expired entry keeps its expiry (a restore)."""
    errors: dict[str, Any] = {}
    try:
        origin_field.run_validators(text)
    except DjangoValidationError as exc:
        errors["origin"] = exc.error_list
    try:
        exclude = {"policy", "created_by", "expires_at", "origin"}
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except DjangoValidationError as exc:
        errors.update(exc.update_error_dict({}))
    if errors:
        raise DjangoValidationError(errors)


def _validated(rules: Mapping[str, Field], data: Any) -> Any:
    """``data`` checked by ``rules`` (reused for every item), or its ``Refusal``."""
    try:
        return check(rules, data)
    except Refusal as exc:
        return exc
