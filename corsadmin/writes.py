"""Configuration writes: one lock order, and a write conflict retried once.

Every write of the configuration takes the generation row's lock first (``writing``):
the rows it then reads for update or writes are locked in its shadow, so two writes
never hold each other's rows (before, the admin's bulk actions locked the selected
rows first and the generation later, and deadlocked with an API edit). What a
database still reports as a conflict (a deadlock with some other writer, a
serialization failure under ``SERIALIZABLE``) is retried once (``run``); a second
failure reaches the client as a 409 "try again" (``db_errors``), never as the
database being unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import OperationalError, connections, router, transaction

from .db_errors import is_conflict
from .models import Generation

logger = logging.getLogger("corsadmin")

T = TypeVar("T")


def alias() -> str:
    """The database configuration writes go to (the generation row's)."""
    return router.db_for_write(Generation) or "default"


def lock_generation(using: str) -> None:
    """Lock the generation row until the caller's transaction ends (created if missing)."""
    rows = Generation.objects.using(using).select_for_update().filter(pk=1)
    if not list(rows.values_list("pk", flat=True)):
        Generation.objects.using(using).get_or_create(pk=1)
        list(rows.values_list("pk", flat=True))


@contextmanager
def writing(using: str | None = None) -> Iterator[None]:
    """A configuration write's transaction, the generation row locked first."""
    using = using or alias()
    with transaction.atomic(using=using):
        lock_generation(using)
        yield


def run(write: Callable[[], T], using: str | None = None) -> T:
    """``write()`` within ``writing()``; a conflict the database reports is retried once.

    Only as the outermost transaction: within the caller's, the conflict has already
    undone the caller's own work, so it is the caller's to retry."""
    using = using or alias()
    try:
        with writing(using):
            return write()
    except OperationalError as exc:
        if not is_conflict(exc) or connections[using].in_atomic_block:
            raise
        logger.info("corsadmin: a write collided with another (%s); trying it once more", str(exc).strip())
    with writing(using):
        return write()
