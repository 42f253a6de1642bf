"""Logging helpers: corsadmin logs under the ``corsadmin`` logger, with structured fields.

Records carry ``event`` (e.g. ``refresh_failed``), and where they apply ``service``,
``policy``, ``origin`` and ``generation``, passed as ``extra``. A format string that
names them (``%(event)s``) fails on records without them (Django's own, other apps'):
attach ``DefaultFields`` to the handler to give every record a default.
"""

from __future__ import annotations

import logging

FIELDS = ("event", "service", "policy", "origin", "generation")


class DefaultFields(logging.Filter):
    """Sets the structured fields a record lacks to ``default`` ("-"); lets every record through."""

    def __init__(self, name: str = "", default: str = "-") -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, self.default)
        return True
