"""What to tell a client when a write fails in the database: unavailable, or busy."""

from __future__ import annotations

UNAVAILABLE = (
    "The database is unavailable right now; nothing was changed. Try again in a moment.",
    "database_unavailable",
)
LOCKED = (
    (
        "The database is locked by another write (SQLite allows one writer at a time); nothing was "
        "changed. Try again in a moment."
    ),
    "database_locked",
)


def describe(exc: BaseException) -> tuple[str, str]:
    """(detail, code) for an ``OperationalError``/``InterfaceError``."""
    if "database is locked" in str(exc) or "database table is locked" in str(exc):
        return LOCKED
    return UNAVAILABLE
