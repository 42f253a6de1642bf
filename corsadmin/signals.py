"""corsadmin's own signal, and the receivers that keep every process's snapshot fresh."""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

from .models import AllowedOrigin, Policy
from .refresh import config_changed, holder

# Sent with ``request=`` for a request the allow-list does not allow. A receiver
# returning True enables CORS for it, with the headers of the CORS_* settings,
# like django-cors-headers' signal of the same name (which is honoured too).
check_request_enabled = Signal()


@receiver(post_save, sender=Policy)
@receiver(post_save, sender=AllowedOrigin)
def _saved(sender: Any, using: str, **kwargs: Any) -> None:
    # Fixtures (raw saves) included: loaddata changes the allow-list too.
    config_changed(using)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("CORSADMIN", "CACHES", "DATABASES") or setting.startswith("CORS_"):
        holder.reset()
