"""A 503 never says "nothing was changed" when something may have been.

The connection fails while the COMMIT is on its way (the server committed, the answer
was lost), or after the request committed its change: the answer says the outcome is
unknown and how to check. A failure before the commit still says nothing was changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import OperationalError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

from corsadmin.api.serializers import OriginSerializer
from corsadmin.models import AllowedOrigin, Policy

from .api_fixtures import make_user, token_client

# Serialized: a transactional test before this one (tests/test_dropin.py) may have left the
# database flushed, without its permissions.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UNKNOWN = {
    "detail": (
        "The database connection failed while the change was being committed: it may or may not "
        "have been saved. Check before trying again: GET the object (or list them), or read its "
        "history in the admin."
    ),
    "code": "outcome_unknown",
}
LOST = "server closed the connection unexpectedly"


@pytest.fixture
def entry() -> AllowedOrigin:
    policy, _ = Policy.objects.get_or_create(name="default")
    return AllowedOrigin.objects.create(origin="https://app.outcome.example.com", policy=policy)


@pytest.fixture
def writer() -> Any:
    client = token_client(make_user("writer", "change_allowedorigin", "view_allowedorigin"))
    client.raise_request_exception = False
    return client


@pytest.fixture
def answer_lost(monkeypatch):
    """The server commits; the connection fails before its answer arrives."""
    commit = BaseDatabaseWrapper._commit

    def commit_then_fail(self):
        commit(self)
        raise OperationalError(LOST)

    monkeypatch.setattr(BaseDatabaseWrapper, "_commit", commit_then_fail)


def test_api_connection_lost_at_commit_says_unknown(entry, writer, answer_lost):
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "kept"}, format="json")
    assert response.status_code == 503
    assert response.json() == UNKNOWN
    entry.refresh_from_db()
    assert entry.note == "kept"  # it was committed: "nothing was changed" would have been false
    assert LogEntry.objects.filter(object_id=str(entry.pk)).count() == 1


def test_admin_connection_lost_at_commit_says_unknown(entry, admin_client, answer_lost):
    response = admin_client.post(
        f"/admin/corsadmin/allowedorigin/{entry.pk}/change/",
        {
            "origin": entry.origin,
            "policy": entry.policy_id,
            "effect": "allow",
            "scopes": "cors",
            "cors": "on",
            "enabled": "on",
            "note": "kept",
        },
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 503
    assert UNKNOWN["detail"].encode() in response.content
    assert b"nothing was changed" not in response.content
    entry.refresh_from_db()
    assert entry.note == "kept"


def test_a_failure_after_the_commit_in_the_same_request_says_unknown(entry, writer, monkeypatch):
    def fail(self, instance):
        raise OperationalError(LOST)

    monkeypatch.setattr(OriginSerializer, "to_representation", fail)  # the response, after the commit
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "kept"}, format="json")
    assert response.status_code == 503
    assert response.json() == UNKNOWN
    entry.refresh_from_db()
    assert entry.note == "kept"


def test_a_failure_before_the_commit_says_nothing_was_changed(entry, writer, monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError(LOST)

    monkeypatch.setattr(AllowedOrigin, "save", fail)
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "lost"}, format="json")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database is unavailable right now; nothing was changed. Try again in a moment.",
        "code": "database_unavailable",
    }
    entry.refresh_from_db()
    assert entry.note == ""


@pytest.mark.services
def test_session_killed_at_commit_on_postgresql_says_unknown(entry, writer, monkeypatch):
    """The real thing: PostgreSQL commits, then the session is terminated from another
    connection before the client reads another answer."""
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    import psycopg

    params = connection.get_connection_params()
    commit = BaseDatabaseWrapper._commit

    def commit_then_killed(self):
        pid = self.connection.info.backend_pid
        commit(self)
        with psycopg.connect(**params, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        with self.wrap_database_errors:
            self.connection.execute("SELECT 1")  # the answer that never comes

    monkeypatch.setattr(BaseDatabaseWrapper, "_commit", commit_then_killed)
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "kept"}, format="json")
    monkeypatch.undo()
    assert response.status_code == 503
    assert response.json() == UNKNOWN
    entry.refresh_from_db()
    assert entry.note == "kept"


def deadlock() -> OperationalError:
    """What Django raises for PostgreSQL's deadlock_detected (psycopg's error as the cause)."""
    import psycopg

    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


@pytest.fixture
def deadlocks(monkeypatch):
    """The first ``count[0]`` saves of an origin are a deadlock's victims."""
    save = AllowedOrigin.save
    count = [0]

    def victim(self, *args, **kwargs):
        if count[0] > 0:
            count[0] -= 1
            raise deadlock()
        return save(self, *args, **kwargs)

    monkeypatch.setattr(AllowedOrigin, "save", victim)
    return count


def test_a_deadlock_is_retried_once(entry, writer, deadlocks):
    deadlocks[0] = 1
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "landed"}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.note == "landed"
    assert LogEntry.objects.filter(object_id=str(entry.pk)).count() == 1  # the failed try left none


def test_a_deadlock_twice_is_a_conflict_not_unavailable(entry, writer, deadlocks):
    deadlocks[0] = 2
    response = writer.patch(f"/api/cors/origins/{entry.pk}/", {"note": "lost"}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This change collided with another write made at the same moment; nothing was changed. "
        "Try again.",
        "code": "write_conflict",
    }
    assert "Retry-After" not in response
    entry.refresh_from_db()
    assert entry.note == ""


def test_a_deadlock_in_an_admin_save_is_retried_once(entry, admin_client, deadlocks):
    deadlocks[0] = 1
    response = admin_client.post(
        f"/admin/corsadmin/allowedorigin/{entry.pk}/change/",
        {
            "origin": entry.origin,
            "policy": entry.policy_id,
            "effect": "allow",
            "scopes": "cors",
            "cors": "on",
            "enabled": "on",
            "note": "landed",
        },
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.note == "landed"
