"""The configuration users edit: policies and their allowed origins, validated on every write.

Both build on ``ConfigModel`` (``corsadmin.models.changelog``), which stamps every write
with a generation so every process sees it; what they may hold is checked by the
validators and refused with the messages of ``corsadmin.models.validation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import conf
from ..hosts import clean_hosts
from ..origins import (
    MAX_LENGTH,
    NULL,
    canonical_origin,
    shared_hosting_refusal,
    shared_hosting_warning,
)
from .changelog import ConfigModel
from .validation import (
    DENIED_IN_POLICY,
    DENY_CSRF_TRUSTED,
    EVERY_ORIGIN_WITH_CREDENTIALS,
    NO_SCOPE,
    NULL_CSRF_TRUSTED,
    NULL_WITH_CREDENTIALS,
    PAST_EXPIRY,
    PLAIN_HTTP_WITH_CREDENTIALS,
    SCOPE_FLAGS,
    SCOPES,
    clean_token_list,
    expiry_in_past,
    shared_hosting_wildcards,
    validate_url_regex,
)

DEFAULT_POLICY = "default"
EXPIRES_SOON = timedelta(days=7)


def default_methods() -> list[str]:
    return list(conf.DEFAULT_METHODS)


def default_headers() -> list[str]:
    return list(conf.DEFAULT_HEADERS)


class Policy(ConfigModel):
    ENFORCE = "enforce"
    REPORT = "report"
    MODES = [(ENFORCE, _("Enforce")), (REPORT, _("Report only"))]

    name = models.SlugField(_("name"), max_length=64, unique=True)
    url_regex = models.CharField(
        _("URL regex"),
        max_length=512,
        default="^/",
        validators=[validate_url_regex],
        help_text=_("Searched in the request path with re.match, like CORS_URLS_REGEX."),
    )
    allow_all_origins = models.BooleanField(_("allow all origins"), default=False)
    allow_credentials = models.BooleanField(_("allow credentials"), default=False)
    allow_methods = models.JSONField(_("allow methods"), default=default_methods)
    allow_headers = models.JSONField(_("allow headers"), default=default_headers)
    expose_headers = models.JSONField(_("expose headers"), default=list, blank=True)
    max_age = models.PositiveIntegerField(
        _("max age"),
        default=conf.DEFAULT_MAX_AGE,
        help_text=_("Seconds a browser may cache a preflight; 0 sends no Access-Control-Max-Age."),
    )
    allow_private_network = models.BooleanField(_("allow private network"), default=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher is tried first; ties by name.")
    )
    mode = models.CharField(
        _("mode"),
        max_length=8,
        choices=MODES,
        default=ENFORCE,
        help_text=_("Report only: never changes a response; records the origins it would refuse."),
    )
    hosts = models.JSONField(
        _("hosts"),
        default=list,
        blank=True,
        help_text=_("Exact hosts or *.example.com wildcards, without port; empty for every host."),
    )
    note = models.TextField(_("note"), blank=True, validators=[MaxLengthValidator(2000)])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("policy")
        verbose_name_plural = _("policies")
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(allow_all_origins=True, allow_credentials=True),
                name="corsadmin_policy_no_all_origins_with_credentials",
                violation_error_message=_(
                    "A policy cannot allow all origins and credentials together: browsers "
                    "refuse '*' with credentials, and echoing every origin would hand "
                    "logged-in users' data to any site. List the origins instead."
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[ValidationError]] = {}
        for field, what, upper in (
            ("allow_methods", "methods", True),
            ("allow_headers", "headers", False),
            ("expose_headers", "headers", False),
        ):
            try:
                setattr(self, field, clean_token_list(getattr(self, field), what, upper))
            except ValidationError as exc:
                errors[field] = exc.error_list
        try:
            self.hosts = clean_hosts(self.hosts)
        except ValidationError as exc:
            errors["hosts"] = exc.error_list
        if errors:
            raise ValidationError(errors)

        if self.allow_credentials and self.pk and not conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
            listed = AllowedOrigin.objects.filter(policy_id=self.pk, origin=NULL, effect=AllowedOrigin.ALLOW)
            if listed.exists():
                raise ValidationError({"allow_credentials": NULL_WITH_CREDENTIALS})
        if self.allow_credentials and self.pk:
            hosted = shared_hosting_wildcards(
                AllowedOrigin.objects.filter(
                    policy_id=self.pk, effect=AllowedOrigin.ALLOW, origin__contains="*."
                ).values_list("origin", flat=True)
            )
            if hosted:
                refusals = [shared_hosting_refusal(text, platform) for text, platform in hosted]
                raise ValidationError({"allow_credentials": refusals})

    def warnings(self, http_origins: Any = None) -> list[str]:
        """What is allowed but risky about this policy: its plain http:// origins while it allows
        credentials (``http_origins``: those entries, if already read). The API's ``warnings``
        and the admin's messages after a save alike."""
        if not self.pk or not self.allow_credentials:
            return []
        if http_origins is None:
            http_origins = self.origins.filter(origin__startswith="http://").order_by("origin")
        return [warning for entry in http_origins for warning in entry.warnings()]

    UPDATE_CLEANERS = {
        "allow_methods": lambda value: clean_token_list(value, "methods", upper=True),
        "allow_headers": lambda value: clean_token_list(value, "headers"),
        "expose_headers": lambda value: clean_token_list(value, "headers"),
        "hosts": clean_hosts,
    }

    @classmethod
    def clean_update(cls, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().clean_update(values)
        if cleaned.get("allow_all_origins") is True and cleaned.get("allow_credentials") is True:
            raise ValidationError(str(cls._meta.constraints[0].violation_error_message))
        return cleaned

    def prepare_for_save(self) -> None:
        self.clean()
        validate_url_regex(self.url_regex)
        if self.mode not in (self.ENFORCE, self.REPORT):
            raise ValidationError(
                {"mode": _("'%(mode)s' is not a mode: use enforce or report.") % {"mode": self.mode}}
            )
        if self.allow_all_origins and self.allow_credentials:
            raise ValidationError(str(self._meta.constraints[0].violation_error_message))


def find_default_policy() -> Policy | None:
    """The ``default`` policy, if it exists: never created as a side effect of a form or a save."""
    return Policy.objects.filter(name=DEFAULT_POLICY).first()


def default_policy() -> int | None:
    """An origin's policy when none is given (the field default): ``find_default_policy``'s pk."""
    policy = find_default_policy()
    return policy.pk if policy is not None else None


class AllowedOrigin(ConfigModel):
    ALLOW = "allow"
    DENY = "deny"
    EFFECTS = [(ALLOW, _("Allow")), (DENY, _("Deny (an exception)"))]
    SCOPE_FLAGS = SCOPE_FLAGS  # the flag of each scope

    origin = models.CharField(
        _("origin"),
        max_length=MAX_LENGTH,
        help_text=_("https://app.example.com, https://*.example.com, http://localhost:* or null."),
    )
    policy = models.ForeignKey(
        Policy,
        on_delete=models.CASCADE,
        related_name="origins",
        default=default_policy,
        verbose_name=_("policy"),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    note = models.TextField(_("note"), blank=True, validators=[MaxLengthValidator(2000)])
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Leave empty to never expire.")
    )
    # Scopes (what the entry lets its origin do; ``scopes`` in the API): cors, csrf, websocket.
    cors = models.BooleanField(
        _("CORS"), default=True, help_text=_("Pages on this origin may read responses (CORS).")
    )
    csrf_trusted = models.BooleanField(
        _("CSRF trusted"), default=False, help_text=_("Also trusted by Django's CSRF origin check.")
    )
    websocket = models.BooleanField(
        _("WebSocket"), default=False, help_text=_("Pages on this origin may open WebSockets.")
    )
    effect = models.CharField(
        _("effect"),
        max_length=8,
        choices=EFFECTS,
        default=ALLOW,
        help_text=_("Deny: an exception that refuses this origin in its policy, whatever else it allows."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("allowed origin")
        verbose_name_plural = _("allowed origins")
        ordering = ["origin", "policy_id"]
        # The probe (``cors probe``, /api/cors/probe/, the admin's Probe page) sends requests
        # from the server: a permission of its own.
        permissions = [("probe_edge", _("Can probe the real edge"))]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "origin"],
                name="corsadmin_origin_unique_per_policy",
                violation_error_message=_("This origin is already listed in this policy."),
            )
        ]

    def __str__(self) -> str:
        return self.origin

    def clean_fields(self, exclude: Any = None) -> None:
        super().clean_fields(exclude)
        if not exclude or "origin" not in exclude:
            try:
                self.origin = canonical_origin(self.origin)
            except ValidationError as exc:
                error = exc
                if self.origin == "*" and self.policy_id and self.policy.allow_credentials:
                    error = ValidationError(EVERY_ORIGIN_WITH_CREDENTIALS, code="invalid_origin")
                raise ValidationError({"origin": error.error_list}) from None
        if (not exclude or "expires_at" not in exclude) and self._sets_past_expiry():
            raise ValidationError({"expires_at": ValidationError(PAST_EXPIRY, code="past_expiry")})

    def _sets_past_expiry(self) -> bool:
        """Whether this write gives the entry an expiry already past: a new entry, or a changed
        expiry. (An entry that has expired keeps its expiry through other edits; an import,
        which restores what a backup held, excludes the field.)"""
        if not expiry_in_past(self.expires_at):
            return False
        if self._state.adding or self.pk is None:
            return True
        stored = AllowedOrigin.objects.filter(pk=self.pk).values_list("expires_at", flat=True).first()
        return stored != self.expires_at

    def validate_constraints(self, exclude: Any = None) -> None:
        """The one-origin-per-policy refusal says so when the entry listed is an exception."""
        try:
            super().validate_constraints(exclude)
        except ValidationError as exc:
            denied = self.listed_exception()
            if denied is None or not hasattr(exc, "error_dict"):
                raise
            duplicate = str(self._meta.constraints[0].get_violation_error_message())
            errors = exc.error_dict
            errors[NON_FIELD_ERRORS] = [
                ValidationError(DENIED_IN_POLICY, code="denied", params={"policy": denied.policy.name})
                if str(error.message) == duplicate
                else error
                for error in errors.get(NON_FIELD_ERRORS, [])
            ]
            raise ValidationError(errors) from None

    def listed_exception(self) -> AllowedOrigin | None:
        """For an allow entry: the deny entry its policy already has for the same origin."""
        if self.effect != self.ALLOW or not self.policy_id:
            return None
        return (
            AllowedOrigin.objects.filter(policy_id=self.policy_id, origin=self.origin, effect=self.DENY)
            .exclude(pk=self.pk)
            .select_related("policy")
            .first()
        )

    def clean(self) -> None:
        self._refuse_no_scope()
        self._refuse_csrf_trusted()
        self._refuse_null_with_credentials()
        self._refuse_shared_hosting_with_credentials()

    UPDATE_CLEANERS = {"origin": canonical_origin}

    @classmethod
    def clean_update(cls, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().clean_update(values)
        if {"cors", "csrf_trusted", "websocket"} <= cleaned.keys() and not (
            cleaned["cors"] or cleaned["csrf_trusted"] or cleaned["websocket"]
        ):
            raise ValidationError(NO_SCOPE)  # no one field's fault (the admin shows flags, the API a list)
        if cleaned.get("csrf_trusted") is True and cleaned.get("effect") == cls.DENY:
            raise ValidationError({"csrf_trusted": DENY_CSRF_TRUSTED})
        if cleaned.get("csrf_trusted") is True and cleaned.get("origin") == NULL:
            raise ValidationError({"csrf_trusted": NULL_CSRF_TRUSTED})
        return cleaned

    def prepare_for_save(self) -> None:
        self.origin = canonical_origin(self.origin)
        if self.effect not in (self.ALLOW, self.DENY):
            raise ValidationError(
                {"effect": _("'%(effect)s' is not an effect: use allow or deny.") % {"effect": self.effect}}
            )
        self._refuse_no_scope()
        self._refuse_csrf_trusted()
        self._refuse_null_with_credentials()
        self._refuse_shared_hosting_with_credentials()

    @property
    def is_deny(self) -> bool:
        return self.effect == self.DENY

    @property
    def scopes(self) -> list[str]:
        """The scopes of the entry, in the order of ``SCOPES``."""
        return [scope for scope, flag in zip(SCOPES, SCOPE_FLAGS, strict=True) if getattr(self, flag)]

    @scopes.setter
    def scopes(self, scopes: Iterable[str]) -> None:
        chosen = set(scopes)
        for scope, flag in zip(SCOPES, SCOPE_FLAGS, strict=True):
            setattr(self, flag, scope in chosen)

    def _refuse_no_scope(self) -> None:
        if not (self.cors or self.csrf_trusted or self.websocket):
            raise ValidationError(NO_SCOPE)  # no one field's fault (the admin shows flags, the API a list)

    def _refuse_csrf_trusted(self) -> None:
        if self.csrf_trusted and self.effect == self.DENY:
            raise ValidationError({"csrf_trusted": DENY_CSRF_TRUSTED})
        if self.origin == NULL and self.csrf_trusted:
            raise ValidationError({"csrf_trusted": NULL_CSRF_TRUSTED})

    def _refuse_null_with_credentials(self) -> None:
        if self.effect == self.DENY:
            return  # refusing null is never a risk
        if self.origin != NULL or not self.policy_id or conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
            return
        if Policy.objects.filter(pk=self.policy_id, allow_credentials=True).exists():
            raise ValidationError({"origin": NULL_WITH_CREDENTIALS})

    def _refuse_shared_hosting_with_credentials(self) -> None:
        if self.effect == self.DENY or "*." not in self.origin or not self.policy_id:
            return  # refusing strangers' pages is never a risk
        hosted = shared_hosting_wildcards([self.origin])
        if hosted and Policy.objects.filter(pk=self.policy_id, allow_credentials=True).exists():
            raise ValidationError({"origin": shared_hosting_refusal(*hosted[0])})

    def warnings(self) -> list[str]:
        """What is allowed but risky about this entry, for the admin and the API to show."""
        if self.effect == self.DENY:
            return []
        found = []
        if self.origin.startswith("http://") and self.policy_id and self.policy.allow_credentials:
            # Never an origin first: the admin capitalises a message's first letter ("Http://").
            found.append(PLAIN_HTTP_WITH_CREDENTIALS % {"policy": self.policy.name, "origin": self.origin})
        if "*." in self.origin:
            found += [shared_hosting_warning(*hosted) for hosted in shared_hosting_wildcards([self.origin])]
        return found

    def status(self) -> str:
        """In words for a list: disabled, expired, expires soon (within a week) or active."""
        now = timezone.now()
        if not self.enabled:
            return "disabled"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.expires_at is not None and self.expires_at <= now + EXPIRES_SOON:
            return "expires soon"
        return "active"
