"""API imports run in the background (``corsadmin.import_jobs``): 202, a job to poll, the same
outcome as an import in the request, all or nothing. Real threads, so real transactions."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.utils import timezone

from corsadmin import budget, import_jobs
from corsadmin.models import AllowedOrigin, ImportJob, Policy
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def jobs_joined():
    """Every job this test started has ended before its database is flushed."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("corsadmin-import"):
            thread.join(30)


@pytest.fixture(autouse=True)
def polling_takes_no_table_locks():
    """On the suite's in-memory SQLite (one shared cache) a reader's table lock makes the job's
    write fail at once ("database table is locked": no busy timeout there), which a file
    database in WAL mode (the demo site's) never does: this test's polling reads uncommitted."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")
    yield
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 0")


@pytest.fixture
def small_threshold(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "IMPORT_JOB_ORIGINS": 2}


def document(name: str, count: int, **policy: Any) -> dict[str, Any]:
    origins = [{"origin": f"https://h{i}.{name}.example.com"} for i in range(count)]
    return {"version": 1, "policies": [{"name": name, "url_regex": "^/", **policy, "origins": origins}]}


def finished(client: Any, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"the job at {url} did not finish: {body}")


def test_a_document_above_the_threshold_answers_202_with_a_job(full_client, small_threshold):
    response = full_client.post(API + "import/", document("big", 3), format="json")
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["url"] == f"http://testserver{API}imports/{body['id']}/"
    assert (body["origins"], body["replace"]) == (3, False)
    assert body["state"] in ("queued", "running", "succeeded")


def test_a_background_import_ends_as_the_import_in_the_request_would(full_client, small_threshold):
    url = full_client.post(API + "import/", document("big", 3), format="json").json()["url"]
    job = finished(full_client, url)
    assert job["state"] == "succeeded"
    assert job["result"] == {
        "replace": False,
        "created": {"policies": 1, "origins": 3},
        "changed": {"policies": 0, "origins": 0},
        "unchanged": {"policies": 0, "origins": 0},
        "deleted": {"policies": 0, "origins": 0},
    }
    assert sorted(AllowedOrigin.objects.filter(policy__name="big").values_list("origin", flat=True)) == [
        f"https://h{i}.big.example.com" for i in range(3)
    ]
    assert (job["stage"], job["done"], job["total"]) == ("", 3, 3)
    assert job["started_at"] is not None and job["finished_at"] is not None


def test_a_background_import_writes_one_history_summary(full_client, small_threshold):
    url = full_client.post(API + "import/", document("big", 3), format="json").json()["url"]
    assert finished(full_client, url)["state"] == "succeeded"
    entry = LogEntry.objects.get(object_repr="big")
    assert entry.user.username == "operator"  # the fixture `full`, who posted it
    assert "https://h2.big.example.com" in entry.get_change_message()


def test_a_refused_document_fails_with_the_errors_of_a_400_and_changes_nothing(full_client, settings):
    bad = document("bad", 3)
    bad["policies"][0]["origins"][1]["origin"] = "https://*.com"
    in_the_request = full_client.post(API + "import/", bad, format="json")
    assert in_the_request.status_code == 400
    settings.CORSADMIN = {**settings.CORSADMIN, "IMPORT_JOB_ORIGINS": 2}
    job = finished(full_client, full_client.post(API + "import/", bad, format="json").json()["url"])
    assert job["state"] == "failed"
    assert "result" not in job
    assert job["errors"] == in_the_request.json()
    assert not Policy.objects.filter(name="bad").exists()


def test_an_import_out_of_time_in_the_request_goes_on_in_the_background(full_client, settings, monkeypatch):
    settings.CORSADMIN = {**settings.CORSADMIN, "REQUEST_TIMEOUT": 30}  # 27 s, margin 3 s
    ticks = iter(range(1000, 10**6))
    monkeypatch.setattr(budget, "now", lambda: float(next(ticks)))  # a second passes at each reading
    response = full_client.post(API + "import/", document("big", 40), format="json")
    assert response.status_code == 202
    job = finished(full_client, response.json()["url"])
    assert job["state"] == "succeeded"
    assert job["result"]["created"] == {"policies": 1, "origins": 40}
    assert LogEntry.objects.filter(object_repr="big").count() == 1  # the request's own work rolled back


def test_a_job_whose_heartbeat_stopped_reads_as_failed_and_lost(full_client):
    stale = timezone.now() - import_jobs.LOST_AFTER - timedelta(seconds=1)
    job = ImportJob.objects.create(state=ImportJob.RUNNING, origins=5, heartbeat_at=stale)
    body = full_client.get(f"{API}imports/{job.pk}/").json()
    assert body["state"] == "failed"
    assert body["errors"] == {
        "non_field_errors": [
            (
                "The import was lost: the server process running it stopped before it finished. "
                "Nothing was changed. Import the document again."
            )
        ]
    }


def test_a_running_job_with_a_recent_heartbeat_reads_as_running(full_client):
    job = ImportJob.objects.create(state=ImportJob.RUNNING, origins=5, heartbeat_at=timezone.now())
    body = full_client.get(f"{API}imports/{job.pk}/").json()
    assert (body["state"], "errors" in body) == ("running", False)


@pytest.mark.services
def test_a_running_job_writes_its_heartbeat_and_progress_on_postgresql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    monkeypatch.setattr(import_jobs, "HEARTBEAT", 0.01)
    job = ImportJob.objects.create(state=ImportJob.RUNNING, origins=5, heartbeat_at=None)
    tracker = import_jobs._JobProgress()
    tracker.stage("writing", 5, "origin")
    tracker.update(2)
    stop = threading.Event()
    beat = threading.Thread(target=import_jobs._beat, args=(job.pk, tracker, stop))
    beat.start()
    try:
        deadline = time.monotonic() + 10
        while ImportJob.objects.get(pk=job.pk).heartbeat_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        beat.join(10)
    job.refresh_from_db()
    assert job.heartbeat_at is not None
    assert (job.stage, job.done, job.total) == ("writing", 2, 5)


def test_an_unknown_job_is_a_json_404(full_client):
    response = full_client.get(f"{API}imports/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_reading_a_job_needs_the_permission_to_view_policies_and_origins(nobody_client, anon_client):
    job = ImportJob.objects.create(state=ImportJob.SUCCEEDED, origins=5)
    assert nobody_client.get(f"{API}imports/{job.pk}/").status_code == 403
    assert anon_client.get(f"{API}imports/{job.pk}/").status_code in (401, 403)


def test_finished_jobs_older_than_a_week_are_deleted_when_a_job_starts(full_client, small_threshold):
    old = ImportJob.objects.create(state=ImportJob.SUCCEEDED, finished_at=timezone.now() - timedelta(days=8))
    recent = ImportJob.objects.create(
        state=ImportJob.SUCCEEDED, finished_at=timezone.now() - timedelta(days=6)
    )
    full_client.post(API + "import/", document("big", 3), format="json")
    assert not ImportJob.objects.filter(pk=old.pk).exists()
    assert ImportJob.objects.filter(pk=recent.pk).exists()


@pytest.mark.parametrize(
    ("value", "expected"), [(0, []), (10_000, []), (-1, ["corsadmin.E018"]), ("9", ["corsadmin.E018"])]
)
def test_import_job_origins_is_checked(settings, value, expected):
    from corsadmin.checks import check_settings_types

    settings.CORSADMIN = {**settings.CORSADMIN, "IMPORT_JOB_ORIGINS": value}
    assert [m.id for m in check_settings_types() if m.id == "corsadmin.E018"] == expected


def test_an_unexpected_error_fails_the_job_saying_nothing_changed(full_client, small_threshold, monkeypatch):
    from django.db import OperationalError

    from corsadmin import documents

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(documents, "import_document", broken)
    job = finished(
        full_client, full_client.post(API + "import/", document("big", 3), format="json").json()["url"]
    )
    assert job["state"] == "failed"
    assert job["errors"] == {
        "non_field_errors": ["The import failed (OperationalError); nothing was changed. Try again."]
    }
    assert not Policy.objects.filter(name="big").exists()


@pytest.mark.parametrize("segment", ["not-a-uuid", "%0A%F1%B9%8D%BC", "0"])
def test_a_job_address_that_is_no_job_id_is_a_json_404(full_client, segment):
    response = full_client.get(f"{API}imports/{segment}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
