"""One lock order on PostgreSQL: an admin bulk action racing an API edit of the same rows.

Every write takes the generation row first (``corsadmin.writes``); before, the admin's bulk
actions locked the selected rows first and the generation later, so a bulk action and an
API edit of one of its rows deadlocked, and the API answered "database unavailable".
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from corsadmin.models import AllowedOrigin, Policy

from .api_fixtures import make_user, token_client

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROUNDS = 20
ENTRIES = 12


def run_together(*calls: Any) -> list[Any]:
    """Start the calls at the same moment, each in a thread with its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(10)
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_bulk_action_and_api_edit_never_deadlock():
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    policy, _ = Policy.objects.get_or_create(name="default")
    entries = [
        AllowedOrigin.objects.create(origin=f"https://e{i}.locks.example.com", policy=policy)
        for i in range(ENTRIES)
    ]
    ids = [str(e.pk) for e in entries]
    admin = Client(raise_request_exception=False)
    admin.force_login(User.objects.create_superuser("root", password="pw-root"))
    api: APIClient = token_client(make_user("writer", "change_allowedorigin", "view_allowedorigin"))
    api.raise_request_exception = False
    target = entries[-1]

    failures = []
    for round_ in range(ROUNDS):
        action = "disable" if round_ % 2 == 0 else "enable"
        note = f"round {round_}"
        bulk, edit = run_together(
            lambda action=action: admin.post(
                "/admin/corsadmin/allowedorigin/", {"action": action, "_selected_action": ids, "index": 0}
            ),
            lambda note=note: api.patch(f"/api/cors/origins/{target.pk}/", {"note": note}, format="json"),
        )
        if getattr(bulk, "status_code", None) != 302 or getattr(edit, "status_code", None) != 200:
            failures.append((round_, _describe(bulk), _describe(edit)))
            continue
        target.refresh_from_db()
        assert target.note == note
        assert set(AllowedOrigin.objects.values_list("enabled", flat=True)) == {action == "enable"}
    assert failures == []


def _describe(response: Any) -> Any:
    if isinstance(response, BaseException):
        return repr(response)
    return (response.status_code, response.content[:200])
