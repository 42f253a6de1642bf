"""Counting tables: the origins the middleware refused, each entry's and each policy's traffic.

None of them is configuration: never stamped with a generation, never exported, written only by
the background flushes of ``corsadmin.refused`` and ``corsadmin.usage``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..origins import MAX_LENGTH
from .config import AllowedOrigin


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
        from ..visible import visible_text

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


class OriginTraffic(models.Model):
    """Requests from one concrete origin to one path prefix at one host within one UTC day,
    allowed or refused (``corsadmin.traffic``): what a preview decides again before and after
    a change. ``path``: one path seen under the prefix (the preview decides by it)."""

    origin = models.CharField(max_length=MAX_LENGTH)
    path_prefix = models.CharField(max_length=100)
    host = models.CharField(max_length=253, blank=True, default="")
    day = models.DateField(db_index=True)
    requests = models.BigIntegerField(default=0)
    last_seen = models.DateTimeField(db_index=True)
    path = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "path_prefix", "host", "day"], name="corsadmin_origintraffic_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.origin} {self.host}{self.path_prefix} on {self.day}: {self.requests}"
