from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator
from django.db import connections, models, router, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .hosts import clean_hosts
from .origins import (
    MAX_LENGTH,
    NULL,
    canonical_origin,
    parse_entry,
    shared_hosting,
    shared_hosting_refusal,
    shared_hosting_warning,
)
from .regex import regex_problem
from .signals import config_committed

# An HTTP token (RFC 9110 5.6.2): a method or a header name.
TOKEN_PATTERN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN = re.compile(TOKEN_PATTERN)
DEFAULT_POLICY = "default"
EXPIRES_SOON = timedelta(days=7)


NULL_WITH_CREDENTIALS = _(
    "'null' on a policy that allows credentials would let any sandboxed iframe or local file read "
    "your users' data. Use a policy without credentials, or set "
    "CORSADMIN['ALLOW_NULL_WITH_CREDENTIALS'] = True if you really mean it."
)


NULL_CSRF_TRUSTED = _(
    "'null' cannot be CSRF-trusted: every sandboxed iframe and file:// page sends Origin: null, "
    "so trusting it would let any site pass Django's CSRF origin check. Untick 'CSRF trusted'."
)


DENY_CSRF_TRUSTED = _(
    "A deny entry cannot be CSRF-trusted: it refuses the origin. Untick 'CSRF trusted', or make "
    "the entry an allow entry."
)


EVERY_ORIGIN_WITH_CREDENTIALS = _(
    "A policy that allows credentials cannot allow every origin: browsers refuse '*' with "
    "credentials, and echoing any origin would hand your users' data to every site. List the "
    "origins that need it, or a subdomain wildcard you control such as https://*.example.com."
)


PAST_EXPIRY = _(
    "This expiry is in the past: the entry would never match. Give a later date and time, or leave "
    "it empty to never expire."
)


DENIED_IN_POLICY = _(
    "Policy %(policy)s already lists this origin as an exception (deny entry), which refuses it. "
    "To allow it, change that entry instead of adding another: make it an allow entry, or disable "
    "or delete it."
)


PLAIN_HTTP_WITH_CREDENTIALS = _(
    "Policy %(policy)s allows credentials and lists the plain http:// origin %(origin)s: anyone on "
    "the network path can impersonate it and read your users' data. Prefer https://."
)


def expiry_in_past(value: Any) -> bool:
    """Whether an ``expires_at`` given now is already past (None never expires)."""
    return value is not None and value <= timezone.now()


def default_methods() -> list[str]:
    return list(conf.DEFAULT_METHODS)


def default_headers() -> list[str]:
    return list(conf.DEFAULT_HEADERS)


# The messages of ``clean_token_list``, by what the list holds.
TOKEN_LIST_MESSAGES = {
    "methods": (
        _("Give the methods as a list of strings."),
        _("'%(item)s' is not a valid method: use letters, digits and - (e.g. X-Request-Id)."),
    ),
    "headers": (
        _("Give the headers as a list of strings."),
        _("'%(item)s' is not a valid header: use letters, digits and - (e.g. X-Request-Id)."),
    ),
}


def validate_url_regex(value: str) -> None:
    problem = regex_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid_regex")


def clean_token_list(value: Any, what: str, upper: bool = False) -> list[str]:
    """Validate a list of HTTP tokens (methods or header names), deduplicated, in order."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(TOKEN_LIST_MESSAGES[what][0], code="invalid_list")
    cleaned: list[str] = []
    for item in value:
        token = item.strip()
        if not _TOKEN.fullmatch(token):
            raise ValidationError(
                TOKEN_LIST_MESSAGES[what][1] % {"item": item},
                code="invalid_token",
            )
        token = token.upper() if upper else token.lower()
        if token not in cleaned:
            cleaned.append(token)
    return cleaned


# --- The change announcement -------------------------------------------------------
#
# Every write moves the generation number in the same transaction as the write, and
# stamps the rows it writes (``version``) with it; a delete leaves a tombstone. A
# process that built its snapshot at generation S reads only what moved since
# (``version > S``, tombstones > S). The generation row is locked from the bump to
# the commit, so numbers are handed out in commit order. After commit,
# ``config_committed`` is sent (the refresh layer listens); on PostgreSQL a NOTIFY
# on ``NOTIFY_CHANNEL`` is delivered to other processes with the commit itself.

NOTIFY_CHANNEL = "corsadmin_changes"
# Deleting more rows than this at once asks every process for a full reload
# instead of one tombstone per row.
TOMBSTONE_BATCH = 500


def _one_transaction(using: str) -> Any:
    """The bump and the write commit together: in the caller's transaction if there is one
    (adding nothing to it, so a caller that catches a failed write can go on), else a new one."""
    if connections[using].in_atomic_block:
        return contextlib.nullcontext()
    return transaction.atomic(using=using)


def next_generation(using: str) -> int:
    """Move the generation within the caller's transaction (held until it commits)."""
    rows = Generation.objects.using(using).filter(pk=1)
    if not rows.update(value=F("value") + 1):
        Generation.objects.using(using).get_or_create(pk=1)
        rows.update(value=F("value") + 1)
    value: int = rows.values_list("value", flat=True).get()
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(value)])
    transaction.on_commit(
        lambda: config_committed.send(sender=Generation, generation=value, using=using), using=using
    )
    return value


def record_deletions(model: type[models.Model], ids: list[Any], generation: int, using: str) -> None:
    """Tombstones for deleted rows (one "reload everything" for a large delete); old ones pruned."""
    kind = model._meta.model_name or ""
    if len(ids) > TOMBSTONE_BATCH:
        tombstones = [Tombstone(generation=generation, kind=Tombstone.RELOAD)]
    else:
        tombstones = [Tombstone(generation=generation, kind=kind, row_id=pk) for pk in ids]
    Tombstone.objects.using(using).bulk_create(tombstones)
    Tombstone.prune(using)


def request_reload(using: str = "default") -> int:
    """Make every process rebuild its snapshot from scratch (after raw SQL writes)."""
    with transaction.atomic(using=using):
        generation = next_generation(using)
        Tombstone.objects.using(using).create(generation=generation, kind=Tombstone.RELOAD)
    return generation


class ConfigQuerySet(models.QuerySet):
    """A QuerySet whose bulk writes stamp a new generation, so every process sees them."""

    def update(self, **kwargs: Any) -> int:
        kwargs = self.model.clean_update(kwargs)  # type: ignore[attr-defined]  # a ConfigModel's
        kwargs.setdefault("updated_at", timezone.now())
        with _one_transaction(self.db):
            kwargs["version"] = next_generation(self.db)
            return super().update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        with _one_transaction(self.db):
            ids = list(self.values_list("pk", flat=True))
            if not ids:
                return 0, {}
            record_deletions(self.model, ids, next_generation(self.db), self.db)
            doomed = self if len(ids) > TOMBSTONE_BATCH else self.model._base_manager.filter(pk__in=ids)
            return models.QuerySet.delete(doomed)

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        for obj in objs:
            obj.prepare_for_save()
        with _one_transaction(self.db):
            generation = next_generation(self.db)
            for obj in objs:
                obj.version = generation
            return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        for obj in objs:
            obj.prepare_for_save()
        with _one_transaction(self.db):
            generation = next_generation(self.db)
            for obj in objs:
                obj.version = generation
            return super().bulk_update(objs, [*fields, "version"], *args, **kwargs)


class ConfigModel(models.Model):
    """Shared behaviour: validate on every save, and stamp every write with a generation.

    Saves stamp here (fixtures' raw saves in ``_stamp_raw_save``), deletes leave a
    tombstone here and in ``ConfigQuerySet.delete``.
    """

    version = models.BigIntegerField(default=0, db_index=True, editable=False)

    objects = ConfigQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.prepare_for_save()
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        with _one_transaction(using):
            self.version = next_generation(using)
            super().save(*args, **kwargs)

    def prepare_for_save(self) -> None:
        """Normalise fields; raise ValidationError for what must never be stored."""

    # Field -> its cleaning function, as ``prepare_for_save`` applies it (for ``clean_update``).
    UPDATE_CLEANERS: dict[str, Any] = {}

    @classmethod
    def clean_update(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The values of a ``QuerySet.update``, validated as ``save()`` validates them (the
        fields' validators and choices, and the model's own cleaning); ValidationError if one
        must never be stored. An expression (``F("priority") + 1``) is the database's to compute."""
        cleaned = dict(values)
        errors: dict[str, list[ValidationError]] = {}
        for name, value in values.items():
            if hasattr(value, "resolve_expression"):
                continue
            field = cls._meta.get_field(name)
            if field.is_relation or not isinstance(field, models.Field):
                continue
            try:
                if value is not None:
                    field.run_validators(value)
                if field.choices and value not in {choice for choice, _label in field.flatchoices}:
                    raise ValidationError(
                        _("%(value)s is not one of the choices of %(field)s.")
                        % {"value": repr(value), "field": name},
                        code="invalid_choice",
                    )
                if name in cls.UPDATE_CLEANERS:
                    cleaned[name] = cls.UPDATE_CLEANERS[name](value)
            except ValidationError as exc:
                errors[name] = exc.error_list
        if errors:
            raise ValidationError(errors)
        return cleaned

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with _one_transaction(using):
            record_deletions(type(self), [self.pk], next_generation(using), using)
            return super().delete(*args, **kwargs)


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


def shared_hosting_wildcards(origins: Any) -> list[tuple[str, str]]:
    """(origin, platform) of the wildcards among ``origins`` (texts) on shared hosting."""
    found = []
    for text in origins:
        try:
            platform = shared_hosting(parse_entry(text))
        except ValidationError:
            continue  # a row written around validation: the loader ignores it
        if platform is not None:
            found.append((text, platform))
    return found


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
    csrf_trusted = models.BooleanField(
        _("CSRF trusted"), default=False, help_text=_("Also trusted by Django's CSRF origin check.")
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
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "origin"],
                name="corsadmin_origin_unique_per_policy",
                violation_error_message=_("This origin is already listed in this policy."),
            )
        ]

    def __str__(self) -> str:
        return self.origin

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

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
        self._refuse_csrf_trusted()
        self._refuse_null_with_credentials()
        self._refuse_shared_hosting_with_credentials()

    UPDATE_CLEANERS = {"origin": canonical_origin}

    @classmethod
    def clean_update(cls, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().clean_update(values)
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
        self._refuse_csrf_trusted()
        self._refuse_null_with_credentials()
        self._refuse_shared_hosting_with_credentials()

    @property
    def is_deny(self) -> bool:
        return self.effect == self.DENY

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


class Generation(models.Model):
    """One row whose number moves on every committed configuration change."""

    value = models.BigIntegerField(default=0)
    pruned = models.BigIntegerField(
        default=0, help_text=_("Tombstones up to this generation are gone: a process behind it reloads all.")
    )

    def __str__(self) -> str:
        return str(self.value)


class Tombstone(models.Model):
    """A deleted policy or origin (``kind`` its model name), or a request to reload everything."""

    RELOAD = "reload"

    generation = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=16)
    row_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.row_id} at {self.generation}"

    @classmethod
    def prune(cls, using: str) -> None:
        """Forget tombstones older than CHANGE_LOG_RETENTION seconds (in the caller's transaction)."""
        cutoff = timezone.now() - timedelta(seconds=conf.get("CHANGE_LOG_RETENTION"))
        old = cls.objects.using(using).filter(created_at__lt=cutoff)
        newest = old.aggregate(newest=models.Max("generation"))["newest"]
        if newest is not None:
            old.delete()
            Generation.objects.using(using).filter(pk=1, pruned__lt=newest).update(pruned=newest)


def _stamp_raw_save(
    sender: type[ConfigModel], instance: ConfigModel, raw: bool, using: str, **kwargs: Any
) -> None:
    """Fixtures (``loaddata``) save rows without ``save()``: stamp them all the same."""
    if raw:
        with _one_transaction(using):
            models.QuerySet(sender, using=using).filter(pk=instance.pk).update(version=next_generation(using))


post_save.connect(_stamp_raw_save, sender=Policy, dispatch_uid="corsadmin_policy_raw_save")
post_save.connect(_stamp_raw_save, sender=AllowedOrigin, dispatch_uid="corsadmin_origin_raw_save")


class RefusedOrigin(models.Model):
    """An origin the middleware refused, counted in memory and written in the background.

    ``report``: a would-be refusal of the report-only ``policy`` (the real decision allowed
    it). Ordinary refusals have ``report`` False and no ``policy`` (""; null in the API).
    """

    origin = models.CharField(_("origin"), max_length=MAX_LENGTH)
    path_prefix = models.CharField(
        _("path prefix"), max_length=100, help_text=_("The first segment of the refused paths.")
    )
    report = models.BooleanField(
        _("report"), default=False, help_text=_("A would-be refusal of a report-only policy.")
    )
    policy = models.CharField(
        _("policy"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("The report-only policy that would refuse it."),
    )
    count = models.BigIntegerField(_("count"), default=0)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    dismissed = models.BooleanField(_("dismissed"), default=False)

    class Meta:
        verbose_name = _("refused origin")
        verbose_name_plural = _("refused origins")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "path_prefix", "report", "policy"],
                name="corsadmin_refused_unique_per_policy",
            )
        ]

    def __str__(self) -> str:
        # Sent by clients: control and bidi characters as escapes (a path must not display as /admin/).
        from .visible import visible_text

        origin, path = visible_text(self.origin), visible_text(self.path_prefix)
        if self.report:
            return _("%(origin)s on %(path)s (would be refused by %(policy)s)") % {
                "origin": origin,
                "path": path,
                "policy": self.policy,
            }
        return _("%(origin)s on %(path)s") % {"origin": origin, "path": path}


# --- Usage (not configuration: never stamped with a generation, never exported) ------
#
# Written only by ``corsadmin.usage``'s flush, as increments (several processes flush
# into the same rows). The foreign keys have no database constraint: a flush may count
# for an entry deleted meanwhile; such rows are dropped by the flush's prune.


class OriginUsage(models.Model):
    """An allowed origin's requests since usage counting began, and the last one's time."""

    origin = models.OneToOneField(
        AllowedOrigin,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="usage",
        db_constraint=False,
    )
    hits = models.BigIntegerField(default=0)
    last_seen = models.DateTimeField(null=True, db_index=True)

    class Meta:
        verbose_name = _("origin usage")
        verbose_name_plural = _("origin usage")

    def __str__(self) -> str:
        return f"{self.origin_id}: {self.hits}"


class OriginHour(models.Model):
    """Requests an allowed origin allowed within one hour (UTC, the hour's start)."""

    origin = models.ForeignKey(AllowedOrigin, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    hour = models.DateTimeField(db_index=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "hour"], name="corsadmin_originhour_unique")]

    def __str__(self) -> str:
        return f"{self.origin_id} at {self.hour}: {self.count}"


class PolicyHour(models.Model):
    """Requests a policy allowed and refused within one hour (UTC, the hour's start).

    By the policy's name: the built-in ``(settings)`` policy has no row, and a deleted
    policy's history stays on the charts until it ages out. A refusal counts for the
    highest-priority policy covering the path."""

    policy = models.CharField(max_length=64)
    hour = models.DateTimeField(db_index=True)
    allowed = models.BigIntegerField(default=0)
    refused = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "hour"], name="corsadmin_policyhour_unique")]

    def __str__(self) -> str:
        return f"{self.policy} at {self.hour}: {self.allowed}/{self.refused}"


# --- Heartbeats (not configuration: written by each server process's heartbeat writer) ----


class ProcessHeartbeat(models.Model):
    """What one live server process reports about its snapshot (``corsadmin.heartbeat``).

    Used when the cache is not Redis (with Redis the heartbeats live there, with a TTL);
    rows not rewritten for a while are those of gone processes, skipped and pruned."""

    process = models.CharField(max_length=255, primary_key=True)  # "hostname:pid"
    generation = models.BigIntegerField(null=True)
    confirmed_at = models.DateTimeField(null=True)  # the snapshot's last confirmation against the database
    since = models.DateTimeField(null=True)  # when the process began serving this generation
    last_error = models.TextField(blank=True, default="")
    written_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.process} at {self.generation}"
