"""Origin leases: API tokens that may only add and remove entries matching a pattern in a policy.

The key is shown once, when the lease is created; only its SHA-256 is stored (a key is 192
random bits, so a fast hash is enough, as for GitHub's tokens). Each lease acts through a
user of its own (``actor``, named ``lease:<name>``, inactive, without a password or any
permission), so what it writes is recorded in the admin history, and as ``created_by``,
under the lease's name, and stays there after the lease is revoked or deleted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..lease_patterns import LeasePattern, canonical_pattern, duration_text, parse_pattern, validate_ttl
from ..origins import MAX_LENGTH
from .config import Policy

KEY_PREFIX = "lease_"
ACTOR_PREFIX = "lease:"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def validate_pattern(value: str) -> None:
    parse_pattern(value)


def validate_max_ttl(value: int) -> None:
    validate_ttl(value)


class LeaseToken(models.Model):
    name = models.SlugField(_("name"), max_length=64, unique=True)
    policy = models.ForeignKey(
        Policy, on_delete=models.CASCADE, related_name="leases", verbose_name=_("policy")
    )
    pattern = models.CharField(
        _("pattern"),
        max_length=MAX_LENGTH,
        validators=[validate_pattern],
        help_text=_(
            "The origins it may add and remove, e.g. https://pr-*.preview.example.com: one '*' "
            "in the host's first label stands for letters, digits and hyphens."
        ),
    )
    max_ttl = models.PositiveIntegerField(
        _("maximum lifetime"),
        validators=[validate_max_ttl],
        help_text=_("Seconds: each entry it adds expires at most this far ahead (the default)."),
    )
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(_("key starts with"), max_length=16, editable=False)
    actor = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="corsadmin_lease",
        editable=False,
        verbose_name=_("acts as"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("origin lease")
        verbose_name_plural = _("origin leases")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude: Any = None) -> None:
        super().clean_fields(exclude)
        if exclude and "pattern" in exclude:
            return
        try:
            self.pattern = canonical_pattern(self.pattern)
        except ValidationError as exc:
            raise ValidationError({"pattern": exc.error_list}) from None

    @property
    def parsed(self) -> LeasePattern:
        return parse_pattern(self.pattern)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def max_ttl_text(self) -> str:
        return duration_text(self.max_ttl)

    def latest_expiry(self, now: datetime | None = None) -> datetime:
        return (now or timezone.now()) + timedelta(seconds=self.max_ttl)

    def covers(self, policy_id: int | None, origin: str) -> bool:
        """Whether an entry of this policy and origin is one this lease may add or remove."""
        return policy_id == self.policy_id and self.parsed.matches(origin)
