"""Snapshot files kept in the database (``corsadmin.snapshot_store``), for hosts that have none.

Not configuration: never stamped with a generation, never exported. One file is a few rows
(``part`` 0 .. ``parts`` - 1, written in one transaction), named by the database's ``epoch`` and
the ``generation`` its tables were read at, exactly as the file on the host that wrote it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class StoredSnapshot(models.Model):
    """One part of a snapshot file (``corsadmin.snapshot_file``'s bytes, in order)."""

    epoch = models.CharField(max_length=32)
    generation = models.BigIntegerField()
    part = models.PositiveIntegerField()
    parts = models.PositiveIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["epoch", "generation", "part"], name="corsadmin_storedsnapshot_part"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.epoch}-{self.generation} part {self.part + 1} of {self.parts}"
