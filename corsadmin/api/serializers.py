"""The models in DRF's terms: the REST API's serializers of policies and origins.

Validation is the models': every write serializer ends with the model's
``full_clean`` (origin canonical form, token lists, the all-origins +
credentials constraint, one origin per policy), so the API, the admin and the
command line refuse the same things with the same messages. Their bounds, and their field
rules for the import document and the command line, are ``corsadmin.records``'.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from ..errors import model_errors
from ..fields import (
    HOST_MAX_LENGTH,
    HOSTS_MAX_ITEMS,
    INT_MAX,
    INT_MIN,
    NOT_TEXT,
    TOKEN_LIST_MAX_ITEMS,
    TOKEN_MAX_LENGTH,
)
from ..models import SCOPES, AllowedOrigin, Policy, find_default_policy
from ..origins import MAX_LENGTH
from ..records import ORIGIN_FIELDS, POLICY_FIELDS, origin_warnings, policy_warnings, with_scope_flags
from ..usage import hits_of
from ..visible import visible_text
from ..wording import entry_status

_Row = TypeVar("_Row", bound=models.Model)


class TextField(serializers.CharField):
    """Text only: a number or a boolean is a type error, not silently turned into text."""

    # Its own key: "invalid" is also the slug validator's, whose message must win there.
    default_error_messages = {"not_text": NOT_TEXT}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class SlugField(TextField, serializers.SlugField):
    pass


def drf_errors(exc: DjangoValidationError, non_field: str | None = None) -> serializers.ValidationError:
    """A model ``ValidationError`` as DRF field errors (``__all__`` under ``non_field``, if given)."""
    return serializers.ValidationError(model_errors(exc, non_field))


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def from_form(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    """Whether the request body is a form, where every value is text (JSON has types)."""
    request = field.context.get("request")
    if request is None:
        return False
    return (request.content_type or "").split(";")[0].strip().lower() in FORM_MEDIA_TYPES


class BooleanField(serializers.BooleanField):
    """true or false; their text spellings ("true", "on", "1", ...) only from a form.

    (DRF's takes "yes", 1 and 1.0 in JSON too; the schema says boolean.)
    """

    def to_internal_value(self, data: Any) -> bool:
        if not (isinstance(data, bool) or (isinstance(data, str) and from_form(self))):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON number without a fraction; digits as text only from a form (DRF's takes "12" and true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (isinstance(data, str) and not from_form(self)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictTextModelSerializer(serializers.ModelSerializer[_Row]):
    """Text model fields take text only; a boolean left out of a form keeps the model's default.

    (DRF reads a boolean missing from form data as an unticked checkbox, False:
    ``curl -d origin=...`` would add a disabled origin.)
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
        models.TextField: TextField,
        models.SlugField: SlugField,
        models.BooleanField: BooleanField,
    }

    # Off for the import document, where a left-out field means "keep the value" on merge.
    boolean_defaults = True

    def build_standard_field(self, field_name: str, model_field: Any) -> tuple[Any, dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if (
            self.boolean_defaults
            and isinstance(model_field, models.BooleanField)
            and not callable(model_field.default)
        ):
            kwargs.pop("required", None)
            kwargs["default"] = model_field.default
        return field_class, kwargs


def token_list(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=TextField(max_length=TOKEN_MAX_LENGTH),
        max_length=TOKEN_LIST_MAX_ITEMS,
        required=False,
        help_text=help_text,
    )


class ModelCleanMixin:
    """Finish validation with the model's ``full_clean`` and keep its normalised values."""

    clean_with_model = True
    # Where errors of the model's constraints go (None: non_field_errors).
    constraint_errors_field: str | None = None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)  # type: ignore[misc]
        if not self.clean_with_model:
            return attrs
        model = self.Meta.model  # type: ignore[attr-defined]
        instance = getattr(self, "instance", None)
        if instance is not None:
            obj = copy.copy(instance)
            for name, value in attrs.items():
                setattr(obj, name, value)
        else:
            obj = model(**attrs)
        try:
            obj.full_clean()
        except DjangoValidationError as exc:
            raise drf_errors(exc, self.constraint_errors_field) from None
        return {name: getattr(obj, name) for name in attrs}


class WarningsField(serializers.ListField):
    """What is allowed but risky; the serializer leaves it out of the body when there is none."""

    def __init__(self, compute: Callable[[Any], list[str]], **kwargs: Any) -> None:
        self.compute = compute
        kwargs.setdefault(
            "help_text",
            "Allowed but risky, e.g. a plain http:// origin on a policy that allows credentials. "
            "Present only when there is something to say.",
        )
        super().__init__(child=serializers.CharField(), read_only=True, **kwargs)

    def get_attribute(self, instance: Any) -> list[str]:
        return self.compute(instance)


class WarningsMixin:
    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        if "warnings" in data and not data["warnings"]:
            del data["warnings"]
        return data


class PolicySerializer(WarningsMixin, ModelCleanMixin, StrictTextModelSerializer[Policy]):
    """A policy: a named set of CORS options for the paths its ``url_regex`` matches."""

    allow_methods = token_list('HTTP methods, e.g. ["GET", "POST"]; stored upper-case.')
    allow_headers = token_list("Request header names a preflight may ask for; stored lower-case.")
    expose_headers = token_list("Response header names scripts may read; stored lower-case.")
    max_age = IntegerField(
        min_value=0,
        max_value=INT_MAX,
        required=False,
        help_text="Seconds a browser may cache a preflight; 0 sends no Access-Control-Max-Age.",
    )
    priority = IntegerField(
        min_value=INT_MIN, max_value=INT_MAX, required=False, help_text="Higher is tried first; ties by name."
    )
    hosts = serializers.ListField(
        child=TextField(max_length=HOST_MAX_LENGTH, trim_whitespace=False),
        max_length=HOSTS_MAX_ITEMS,
        required=False,
        help_text='Exact hosts or wildcards, e.g. ["api.example.com", "*.example.org"], without port; '
        "stored lower-case, IDN as punycode. Empty (the default): every host.",
    )
    mode = serializers.ChoiceField(
        choices=Policy.MODES,
        required=False,
        help_text="enforce (default), or report: never changes a response; the origins it would refuse "
        "while the real decision allowed them are listed in blocked/ with report: true.",
    )
    warnings = WarningsField(policy_warnings)

    class Meta:
        model = Policy
        fields: tuple[str, ...] = POLICY_FIELDS
        read_only_fields = ("created_at", "updated_at")


class OriginField(TextField):
    """Text handed to the one validator as is (no trimming; it names control characters itself)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class PolicyNameField(serializers.SlugRelatedField[Policy]):
    default_error_messages = {
        "does_not_exist": gettext_lazy("There is no policy named '{value}'."),
        "invalid": gettext_lazy("Give the policy's name as text."),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="name", queryset=Policy.objects.all(), **kwargs)

    def to_internal_value(self, data: Any) -> Policy:
        if isinstance(data, str) and "\x00" in data:  # in no name; PostgreSQL refuses it in a query
            self.fail("does_not_exist", value=visible_text(data))
        return super().to_internal_value(data)


def UsageField(
    index: int, field_class: type[serializers.Field[Any, Any, Any, Any]], **kwargs: Any
) -> serializers.Field[Any, Any, Any, Any]:
    """Read-only ``hits`` (index 0) or ``last_seen`` (1): annotated by the API's queryset
    (``usage.with_usage``), read for a single object otherwise."""

    class Field(field_class):  # type: ignore[valid-type,misc]
        def get_attribute(self, instance: Any) -> Any:
            return hits_of(instance)[index]

    return Field(read_only=True, **kwargs)


class OriginSerializer(WarningsMixin, ModelCleanMixin, StrictTextModelSerializer[AllowedOrigin]):
    """An origin allowed by a policy."""

    constraint_errors_field = "origin"  # its one constraint: one origin per policy
    origin = OriginField(
        max_length=MAX_LENGTH,
        help_text="https://app.example.com, https://*.example.com, http://localhost:* or null; "
        "stored in canonical form.",
    )
    policy = PolicyNameField(required=False, help_text="The policy's name; `default` when omitted.")
    effect = serializers.ChoiceField(
        choices=AllowedOrigin.EFFECTS,
        required=False,
        help_text="allow (default), or deny: an exception; in its policy a matching deny entry wins over "
        "any allow entry and allow_all_origins. Never csrf_trusted.",
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=SCOPES),
        required=False,
        max_length=len(SCOPES) * 2,
        help_text="What the entry lets its origin do: `cors` (read responses cross-origin), `csrf` "
        "(unsafe requests pass Django's CSRF origin check; the same flag as csrf_trusted), "
        "`websocket` (open WebSockets, with corsadmin.channels.OriginValidator). At least one; "
        '["cors"] when omitted on a new entry. Each applies on the paths and hosts of the policy.',
    )
    created_by = serializers.CharField(
        source="created_by.get_username", read_only=True, allow_null=True, default=None
    )
    warnings = WarningsField(
        origin_warnings,
        help_text="Allowed but risky, e.g. a plain http:// origin on a policy that allows credentials; "
        "after a PUT or PATCH that disables an exception (deny entry), turns it into an allow entry, "
        "moves it or sets its expiry: the origins that become allowed (then, or at that expiry); "
        "after a write of an allow entry that an exception of its policy refuses entirely: that "
        "exception. Present only when there is something to say.",
    )
    hits = UsageField(
        0,
        serializers.IntegerField,
        help_text="Requests this entry allowed (preflights included) since usage counting began; "
        "written by each server process every few seconds.",
    )
    last_seen = UsageField(
        1,
        serializers.DateTimeField,
        allow_null=True,
        help_text="When this entry last allowed a request; null if never.",
    )
    status = serializers.SerializerMethodField(
        help_text="In words, as the admin and `cors list` say it: active, disabled, expired or "
        "expires soon (within 7 days); `deny: ` before it for an exception (deny entry)."
    )

    class Meta:
        model = AllowedOrigin
        fields: tuple[str, ...] = ORIGIN_FIELDS
        read_only_fields = ("id", "created_at", "updated_at", "created_by")
        extra_kwargs = {
            "expires_at": {
                "help_text": "ISO 8601, or null to never expire. A new entry, or a change of expiry, "
                "may not be in the past (400); an entry that has expired keeps its expiry through "
                "other changes, and an import restores it."
            }
        }
        # One origin per policy is the model's UniqueConstraint, checked by full_clean.
        validators: list[Any] = []

    def get_status(self, obj: AllowedOrigin) -> str:
        return entry_status(obj, translate=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs = with_scope_flags(attrs)
        except DjangoValidationError as exc:
            raise drf_errors(exc, None) from None
        if self.instance is None and "policy" in self.fields and "policy" not in attrs:
            # The existing `default` policy, never a new one: the model's field default would
            # create it again, unrecorded, after an operator deleted it (found by the stateful run).
            attrs["policy"] = find_default_policy()
            if attrs["policy"] is None:
                raise serializers.ValidationError(
                    {
                        "policy": [
                            _("There is no policy named 'default'. Name the policy to add the origin to.")
                        ]
                    }
                )
        return super().validate(attrs)
