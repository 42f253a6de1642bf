"""Policies and origins as plain data with the API's field names, and the rules their input is
checked by, without the REST framework: for the import document and the command line.

The REST API's serializers (``corsadmin.api.serializers``) show and read the same fields; the
bounds and messages both use are defined here (``corsadmin.fields``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.http.request import split_domain_port
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .fetches import CREDENTIALS_MODES
from .fields import (
    HOST_MAX_LENGTH,
    HOSTS_MAX_ITEMS,
    INT_MAX,
    INT_MIN,
    ISO_8601,
    NOT_GIVEN,
    TOKEN_LIST_MAX_ITEMS,
    TOKEN_MAX_LENGTH,
    Boolean,
    Choice,
    DateTime,
    Field,
    Integer,
    List,
    Pattern,
    Slug,
    Text,
    drf_setting,
    enforce_timezone,
)
from .hosts import canonical_host
from .models import TOKEN_PATTERN, AllowedOrigin, Policy
from .origins import MAX_LENGTH, MAX_ORIGIN_LENGTH
from .usage import hits_of
from .wording import entry_status

PATH_MESSAGE = gettext_lazy("Give a path starting with '/', e.g. /api/items/.")


def model_validators(model: type[models.Model], name: str) -> list[Any]:
    """A model field's validators as DRF's ``ModelSerializer`` keeps them (its own max length aside)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    if field.max_length is None:
        return list(field.validators)
    return [v for v in field.validators if not isinstance(v, MaxLengthValidator)]


def _tokens() -> List:
    return List(Text(max_length=TOKEN_MAX_LENGTH), max_length=TOKEN_LIST_MAX_ITEMS)


def _boolean(model: type[models.Model], name: str, defaults: bool) -> Boolean:
    """A boolean; with ``defaults``, one left out takes the model's default (never False because
    a form left it out: the API's rule)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return Boolean(default=field.get_default() if defaults else NOT_GIVEN)


def policy_fields(defaults: bool = False) -> dict[str, Field]:
    """The writable fields of a policy, in the API's order."""
    return {
        "name": Slug(max_length=64, required=True),
        "url_regex": Text(max_length=512, validators=model_validators(Policy, "url_regex")),
        "hosts": List(Text(max_length=HOST_MAX_LENGTH, trim=False), max_length=HOSTS_MAX_ITEMS),
        "mode": Choice(Policy.MODES),
        "allow_all_origins": _boolean(Policy, "allow_all_origins", defaults),
        "allow_credentials": _boolean(Policy, "allow_credentials", defaults),
        "allow_methods": _tokens(),
        "allow_headers": _tokens(),
        "expose_headers": _tokens(),
        "max_age": Integer(min_value=0, max_value=INT_MAX),
        "allow_private_network": _boolean(Policy, "allow_private_network", defaults),
        "enabled": _boolean(Policy, "enabled", defaults),
        "priority": Integer(min_value=INT_MIN, max_value=INT_MAX),
        "note": Text(allow_blank=True, validators=model_validators(Policy, "note")),
    }


def origin_fields() -> dict[str, Field]:
    """The writable fields of an origin inside its policy (the import document's)."""
    return {
        # Handed to the one validator as is: no trimming, and it names control characters itself.
        "origin": Text(max_length=MAX_LENGTH, trim=False, null_characters=True, required=True),
        "enabled": Boolean(),
        "note": Text(allow_blank=True, validators=model_validators(AllowedOrigin, "note")),
        "expires_at": DateTime(allow_null=True),
        "csrf_trusted": Boolean(),
        "effect": Choice(AllowedOrigin.EFFECTS),
    }


def request_host(value: str) -> str:
    """A request's Host as the decision reads it (a port is ignored)."""
    domain, _port = split_domain_port(value.strip())
    if not domain or "*" in domain:
        raise ValidationError(
            _("'%(value)s' is not a request host: give e.g. api.example.com or api.example.com:8000.")
            % {"value": value}
        )
    return canonical_host(domain)


def check_query_fields() -> dict[str, Field]:
    """The question ``cors check`` and the API's ``check/`` answer."""
    token = rf"^{TOKEN_PATTERN}\Z"
    return {
        "origin": Text(max_length=MAX_ORIGIN_LENGTH, trim=False, text_only=False, required=True),
        "path": Pattern(r"^/", PATH_MESSAGE, default="/", max_length=4096, trim=False, text_only=False),
        "method": Pattern(token, default="GET", max_length=32, text_only=False),
        "request_method": Pattern(token, max_length=32, text_only=False),
        "request_headers": Text(allow_blank=True, max_length=4096, text_only=False),
        "private_network": Boolean(default=False),
        "host": Text(max_length=300, text_only=False),
        "credentials": Choice([(mode, mode) for mode in CREDENTIALS_MODES], default="same-origin"),
        "url": Text(max_length=4096, text_only=False),
    }


# The method stays as written: fetch() sends `patch` lower-case, and browsers compare it so.
CHECK_QUERY_AFTER = {"host": request_host}


# --- reading ---------------------------------------------------------------------------


def datetime_text(value: datetime.datetime | None) -> str | datetime.datetime | None:
    """As the API writes times: ISO 8601 in the current time zone, ``Z`` for UTC (or DRF's
    ``DATETIME_FORMAT``)."""
    if not value:
        return None
    output_format = drf_setting("DATETIME_FORMAT", ISO_8601)
    if output_format is None or isinstance(value, str):
        return value
    value = enforce_timezone(value)
    if output_format.lower() != ISO_8601:
        return value.strftime(output_format)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _texts(values: Iterable[object]) -> list[str | None]:
    return [None if value is None else str(value) for value in values]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


POLICY_FIELDS = (
    "name",
    "url_regex",
    "hosts",
    "mode",
    "allow_all_origins",
    "allow_credentials",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "allow_private_network",
    "enabled",
    "priority",
    "note",
    "created_at",
    "updated_at",
    "warnings",
)
ORIGIN_FIELDS = (
    "id",
    "origin",
    "policy",
    "enabled",
    "note",
    "expires_at",
    "csrf_trusted",
    "effect",
    "created_at",
    "updated_at",
    "created_by",
    "hits",
    "last_seen",
    "status",
    "warnings",
)
# In the document: no row id, no policy (origins are nested in theirs), nothing that is not
# configuration (usage, status, warnings).
DOCUMENT_POLICY_FIELDS = tuple(name for name in POLICY_FIELDS if name != "warnings")
DOCUMENT_ORIGIN_FIELDS = tuple(
    name for name in ORIGIN_FIELDS if name not in {"id", "policy", "hits", "last_seen", "status", "warnings"}
)


def policy_warnings(policy: Policy) -> list[str]:
    """The warnings of a policy's origins: plain http:// ones while it allows credentials."""
    # ``http_origins``: prefetched by the API's list and detail views.
    return policy.warnings(getattr(policy, "http_origins", None))


def origin_warnings(entry: AllowedOrigin) -> list[str]:
    """An entry's own warnings, and what the change just made to it opened (set by the API's
    update: ``widening.ChangeWatch``)."""
    return [*entry.warnings(), *getattr(entry, "widening_warnings", ())]


def _policy_value(policy: Policy, name: str) -> Any:
    value = getattr(policy, name)
    if value is None:
        return None
    if name in ("hosts", "allow_methods", "allow_headers", "expose_headers"):
        return _texts(value)
    if name in ("created_at", "updated_at"):
        return datetime_text(value)
    if name in ("max_age", "priority"):
        return int(value)
    if name in ("allow_all_origins", "allow_credentials", "allow_private_network", "enabled"):
        return bool(value)
    return str(value)


def policy_record(policy: Policy, fields: Iterable[str] = POLICY_FIELDS) -> dict[str, Any]:
    """A policy as the API shows it (``warnings`` only when there are some)."""
    record: dict[str, Any] = {}
    for name in fields:
        if name == "warnings":
            warnings = _texts(policy_warnings(policy))
            if warnings:
                record[name] = warnings
        else:
            record[name] = _policy_value(policy, name)
    return record


def _origin_value(entry: AllowedOrigin, name: str) -> Any:
    if name == "id":
        return int(entry.pk)
    if name == "policy":
        return _text(entry.policy.name)
    if name == "created_by":
        return None if entry.created_by is None else _text(entry.created_by.get_username())
    if name == "hits":
        return int(hits_of(entry)[0])
    if name == "last_seen":
        return datetime_text(hits_of(entry)[1])
    if name == "status":
        return entry_status(entry, translate=False)
    value = getattr(entry, name)
    if value is None:
        return None
    if name in ("expires_at", "created_at", "updated_at"):
        return datetime_text(value)
    if name in ("enabled", "csrf_trusted"):
        return bool(value)
    return str(value)


def origin_record(entry: AllowedOrigin, fields: Iterable[str] = ORIGIN_FIELDS) -> dict[str, Any]:
    """An origin as the API shows it (``warnings`` only when there are some)."""
    record: dict[str, Any] = {}
    for name in fields:
        if name == "warnings":
            warnings = _texts(origin_warnings(entry))
            if warnings:
                record[name] = warnings
        else:
            record[name] = _origin_value(entry, name)
    return record
