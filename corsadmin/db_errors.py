"""What to tell a client when a write fails in the database: unavailable, busy, a conflict,
or an outcome nobody knows.

"Nothing was changed" is said only when it is true: the failure came before anything
was committed. When the connection failed while a COMMIT was on its way (the server
may have committed and the answer been lost), or after this request had already
committed a change, the outcome is unknown, and the message says how to find out.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from django.core.signals import request_started
from django.utils.translation import gettext_lazy as _

from .signals import config_committed


@dataclass(frozen=True)
class Failure:
    status: int
    detail: Any  # a lazily translated text
    code: str


UNAVAILABLE = Failure(
    503,
    _("The database is unavailable right now; nothing was changed. Try again in a moment."),
    "database_unavailable",
)
LOCKED = Failure(
    503,
    _(
        "The database is locked by another write (SQLite allows one writer at a time); nothing was "
        "changed. Try again in a moment."
    ),
    "database_locked",
)
CONFLICT = Failure(
    409,
    _("This change collided with another write made at the same moment; nothing was changed. Try again."),
    "write_conflict",
)
UNKNOWN = Failure(
    503,
    _(
        "The database connection failed while the change was being committed: it may or may not "
        "have been saved. Check before trying again: GET the object (or list them), or read its "
        "history in the admin."
    ),
    "outcome_unknown",
)

# deadlock_detected, serialization_failure: the server undid the transaction; trying again works.
CONFLICT_STATES = frozenset({"40P01", "40001"})


def classify(exc: BaseException) -> Failure:
    """What to answer for an ``OperationalError``/``InterfaceError`` raised in this request."""
    if _committed_in_request() or (_during_commit(exc) and not _refused_by_server(exc)):
        return UNKNOWN
    if is_conflict(exc):
        return CONFLICT
    if "database is locked" in str(exc) or "database table is locked" in str(exc):
        return LOCKED
    return UNAVAILABLE


def is_conflict(exc: BaseException) -> bool:
    return sqlstate(exc) in CONFLICT_STATES


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the server answered with (psycopg's, behind Django's exception), if any."""
    for error in _chain(exc):
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if state:
            return str(state)
    return None


def _refused_by_server(exc: BaseException) -> bool:
    """The server answered the COMMIT with an error (the transaction was rolled back), as opposed
    to the connection failing (class 08) or the session being shut down (57P0x) meanwhile."""
    state = sqlstate(exc)
    return state is not None and not state.startswith(("08", "57P"))


def _during_commit(exc: BaseException) -> bool:
    """Raised from within a connection's ``commit`` (Django's ``atomic`` committing)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    for error in _chain(exc):
        tb: TracebackType | None = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_name in ("commit", "_commit") and isinstance(
                frame.f_locals.get("self"), BaseDatabaseWrapper
            ):
                return True
            tb = tb.tb_next
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


# The configuration changes this request has committed (None outside a request).
_commits: ContextVar[list[int] | None] = ContextVar("corsadmin_request_commits", default=None)


def _committed_in_request() -> bool:
    return bool(_commits.get())


def _request_started(**kwargs: object) -> None:
    _commits.set([])


def _config_committed(generation: int, **kwargs: object) -> None:
    commits = _commits.get()
    if commits is not None:
        commits.append(generation)


request_started.connect(_request_started, dispatch_uid="corsadmin_request_commits")
config_committed.connect(_config_committed, dispatch_uid="corsadmin_request_commits")
