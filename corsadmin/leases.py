"""Origin leases: creating, revoking and finding them, and pruning what they leased once it expired.

The admin and ``manage.py cors token`` create and revoke leases here; the API's token
authentication finds a lease by its key (``find``); the flusher's hourly prune
(``usage.prune``) deletes the entries leases added once they have expired. An entry stops
matching at its ``expires_at`` in every process without any of this (the snapshot compares
expiries with the clock); the prune only tidies the table.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from . import history
from .models import ACTOR_PREFIX, KEY_PREFIX, AllowedOrigin, LeaseToken, Policy, key_digest

logger = logging.getLogger("corsadmin")

KEY_BYTES = 24  # 192 bits, 48 hex digits after the prefix


def is_lease_key(key: str) -> bool:
    """A lease's key, never a DRF authtoken key (those are 40 hex digits, without '_')."""
    return key.startswith(KEY_PREFIX)


def _actor(name: str) -> Any:
    """The user a lease acts as: inactive, no password, no permission. One left by a deleted
    lease of the same name is taken again, so its history continues under the same name."""
    User = get_user_model()
    username = ACTOR_PREFIX + name
    actor = User._default_manager.filter(
        **{User.USERNAME_FIELD: username}, corsadmin_lease__isnull=True
    ).first()
    if actor is None:
        actor = User(**{User.USERNAME_FIELD: username})
    actor.set_unusable_password()
    actor.is_active = False
    actor.save()
    return actor


def issue_key(lease: LeaseToken) -> str:
    """A new key for ``lease`` (its digest and first characters set on it); returned only here."""
    key = KEY_PREFIX + secrets.token_hex(KEY_BYTES)
    lease.key_digest = key_digest(key)
    lease.key_hint = key[: len(KEY_PREFIX) + 4]
    return key


def save_new(lease: LeaseToken, user: Any) -> None:
    """Save a validated new lease with its own user (in the caller's transaction)."""
    lease.created_by = user if history.user_id(user) is not None else None
    lease.actor = _actor(lease.name)
    lease.save()


def create(name: str, policy: Policy, pattern: str, max_ttl: int, user: Any = None) -> tuple[LeaseToken, str]:
    """Validate and save a new lease; returns it and its key (shown once: only a digest is kept).
    Raises ``ValidationError`` (nothing saved) for bad input or a name taken."""
    lease = LeaseToken(name=name, policy=policy, pattern=pattern, max_ttl=max_ttl)
    key = issue_key(lease)
    lease.full_clean(exclude=["actor"])
    with transaction.atomic():
        save_new(lease, user)
        history.log_addition(user, [lease])
    return lease, key


def revoke(lease: LeaseToken, user: Any = None, at: datetime | None = None) -> bool:
    """Revoke a lease (its key is refused from then on, a 401); False if it already was. The
    entries it added stay until they expire."""
    if lease.revoked_at is not None:
        return False
    before = history.field_values(lease)
    with transaction.atomic():
        lease.revoked_at = at or timezone.now()
        lease.save(update_fields=["revoked_at"])
        history.log_change(user, lease, before, ["revoked_at"])
    return True


def find(key: str) -> LeaseToken | None:
    """The unrevoked lease of this key, with its policy and actor; None if there is none."""
    lease = LeaseToken.objects.select_related("policy", "actor").filter(key_digest=key_digest(key)).first()
    if lease is None or lease.revoked_at is not None:
        return None
    return lease


def prune_expired(now: datetime) -> int:
    """Delete the entries leases added that expired before ``now``; returns how many."""
    expired = AllowedOrigin.objects.filter(
        created_by__corsadmin_lease__isnull=False, expires_at__isnull=False, expires_at__lte=now
    )
    removed = expired.delete()[1].get(AllowedOrigin._meta.label, 0)
    if removed:
        logger.info("corsadmin: pruned %d expired leased origin(s)", removed, extra={"event": "lease_prune"})
    return removed
