"""The change log: each configuration write moves the generation and stamps its rows with it,
each delete leaves a tombstone, and each server process reports the generation it serves.

Every write moves the generation number in the same transaction as the write, and
stamps the rows it writes (``version``) with it; a delete leaves a tombstone. A
process that built its snapshot at generation S reads only what moved since
(``version > S``, tombstones > S). The generation row is locked from the bump to
the commit, so numbers are handed out in commit order. After commit,
``config_committed`` is sent (the refresh layer listens); on PostgreSQL a NOTIFY
on ``NOTIFY_CHANNEL`` is delivered to other processes with the commit itself.

``ConfigModel`` and ``ConfigQuerySet`` stamp every write path of the configuration
models (``corsadmin.models.config``); this module needs nothing from them.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import conf
from ..signals import config_committed

NOTIFY_CHANNEL = "corsadmin_changes"
# Deleting more rows than this at once asks every process for a full reload
# instead of one tombstone per row.
TOMBSTONE_BATCH = 500


def new_epoch() -> str:
    return secrets.token_hex(16)


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


def _prepared(objs: Any) -> list[Any]:
    """The rows of a bulk write, each normalised and refused as ``save()`` would."""
    rows = list(objs)
    for row in rows:
        row.prepare_for_save()
    return rows


def _stamp(rows: list[Any], generation: int) -> None:
    for row in rows:
        row.version = generation


_Row = TypeVar("_Row", bound=models.Model)


class ConfigQuerySet(models.QuerySet[_Row]):
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
        objs = _prepared(objs)
        with _one_transaction(self.db):
            _stamp(objs, next_generation(self.db))
            return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        objs = _prepared(objs)
        with _one_transaction(self.db):
            _stamp(objs, next_generation(self.db))
            return super().bulk_update(objs, [*fields, "version"], *args, **kwargs)


class ConfigManager(models.Manager[_Row]):
    """``ConfigQuerySet``'s manager, declared rather than ``as_manager()``: django-stubs loses the
    class ``as_manager`` makes when the models live in another module (warm-cache mypy runs)."""

    _queryset_class = ConfigQuerySet


class ConfigModel(models.Model):
    """Shared behaviour: validate on every save, and stamp every write with a generation.

    Saves stamp here (fixtures' raw saves in ``_stamp_raw_save``), deletes leave a
    tombstone here and in ``ConfigQuerySet.delete``.
    """

    version = models.BigIntegerField(default=0, db_index=True, editable=False)

    objects = ConfigManager()

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


class Generation(models.Model):
    """One row whose number moves on every committed configuration change."""

    value = models.BigIntegerField(default=0)
    pruned = models.BigIntegerField(
        default=0, help_text=_("Tombstones up to this generation are gone: a process behind it reloads all.")
    )
    # Random, set when the row is made: which history the numbers belong to. A snapshot file
    # (corsadmin.snapshot_file) is only read back by a database with the same epoch.
    epoch = models.CharField(max_length=32, default=new_epoch, editable=False)

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


# By label: the configuration models (``config``) build on this module, never the reverse.
post_save.connect(_stamp_raw_save, sender="corsadmin.Policy", dispatch_uid="corsadmin_policy_raw_save")
post_save.connect(_stamp_raw_save, sender="corsadmin.AllowedOrigin", dispatch_uid="corsadmin_origin_raw_save")


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
