"""corsadmin.metrics: decisions counted in memory, moved into prometheus_client by a flush."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError

from corsadmin import metrics
from corsadmin.loader import SnapshotBuilder
from corsadmin.models import AllowedOrigin, Policy

from .cors_helpers import APP, ECHO

pytestmark = pytest.mark.usefixtures("manual_telemetry")
prometheus_client = pytest.importorskip("prometheus_client")
ROOT = Path(__file__).resolve().parent.parent
EVIL = "https://evil.example.net"
PREFLIGHT = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT"}


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def decisions() -> dict[tuple[str, str], float]:
    return {
        (policy, outcome): sample("corsadmin_decisions_total", policy=policy, outcome=outcome)
        for policy in ("default", "(none)")
        for outcome in metrics.OUTCOMES
    }


@pytest.fixture
def enabled(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "METRICS": True, "METRICS_FLUSH": "manual"}
    assert metrics.ENABLED
    metrics.flush()  # what earlier tests counted is in the registry, not in this test's deltas
    return settings


@pytest.fixture
def scraper(db):
    """A Prometheus scraper: a token of a user with ``view_policy``, as the README says."""
    from .api_fixtures import make_user, token_client

    return token_client(make_user("prometheus", "view_policy"))


def delta(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


@pytest.mark.django_db
def test_decisions_are_counted_by_policy_and_outcome_after_a_flush(client, enabled):
    AllowedOrigin.objects.create(origin=APP)
    Policy.objects.filter(name="default").update(url_regex="^/demo/")
    before = decisions()
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.options(ECHO, HTTP_ORIGIN=APP, **PREFLIGHT)
    for _ in range(3):
        client.get(ECHO, HTTP_ORIGIN=EVIL)
    client.options(ECHO, HTTP_ORIGIN=EVIL, **PREFLIGHT)  # a refused preflight is a refusal
    client.get("/nowhere/", HTTP_ORIGIN=EVIL)  # no policy covers the path
    client.get(ECHO)  # no Origin: not a CORS request
    client.post(ECHO, HTTP_ORIGIN="http://testserver")  # the site's own origin: not a refusal
    assert decisions() == before  # nothing reaches prometheus_client before the flush
    metrics.flush()
    assert delta(before, decisions()) == {
        ("default", "allowed"): 2,
        ("default", "preflight"): 1,
        ("(none)", "refused"): 4,
        ("(none)", "not_covered"): 1,
    }
    metrics.flush()  # a second flush adds nothing
    assert delta(before, decisions())[("default", "allowed")] == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_async_path_counts_the_same(async_client, enabled):
    from asgiref.sync import sync_to_async

    await sync_to_async(AllowedOrigin.objects.create)(origin=APP)
    before = decisions()
    await async_client.get(ECHO, headers={"Origin": APP})
    await async_client.options(ECHO, headers={"Origin": APP, "Access-Control-Request-Method": "PUT"})
    await async_client.get(ECHO, headers={"Origin": EVIL})
    await sync_to_async(metrics.flush)()
    assert delta(before, decisions()) == {
        ("default", "allowed"): 1,
        ("default", "preflight"): 1,
        ("(none)", "refused"): 1,
    }


@pytest.mark.django_db
def test_the_view_shows_the_samples(client, enabled, scraper):
    AllowedOrigin.objects.create(origin=APP)
    AllowedOrigin.objects.create(origin="https://*.example.org")
    client.get(ECHO, HTTP_ORIGIN=APP)
    response = scraper.get("/metrics/", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    from corsadmin.refresh import holder

    assert 'corsadmin_decisions_total{outcome="allowed",policy="default"}' in text
    assert 'corsadmin_snapshot_entries{policy="default"} 2.0' in text
    assert f"corsadmin_snapshot_generation {float(holder.peek().generation)}" in text
    assert "corsadmin_snapshot_age_seconds " in text
    assert "corsadmin_refresh_duration_seconds_count " in text
    assert sample("corsadmin_refresh_duration_seconds_count") >= 1


@pytest.mark.django_db
def test_refresh_failures_are_counted_by_service(client, enabled, monkeypatch):
    client.get(ECHO, HTTP_ORIGIN=APP)
    before = sample("corsadmin_refresh_failures_total", service="database")

    def fail(self):
        raise OperationalError("database is down")

    monkeypatch.setattr(SnapshotBuilder, "update", fail)
    from corsadmin.refresh import holder

    holder.mark_dirty()
    client.get(ECHO, HTTP_ORIGIN=APP)
    holder.mark_dirty()
    client.get(ECHO, HTTP_ORIGIN=APP)
    metrics.flush()
    assert sample("corsadmin_refresh_failures_total", service="database") - before == 2


@pytest.mark.django_db
def test_disabled_counts_nothing_and_hides_the_view(client, settings, scraper):
    settings.CORSADMIN = {**settings.CORSADMIN, "METRICS": False}
    assert not metrics.ENABLED
    AllowedOrigin.objects.create(origin=APP)
    counted = dict(metrics._decisions)
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN=EVIL)
    assert metrics._decisions == counted
    assert scraper.get("/metrics/").status_code == 404


def run_process(*args: str, multiproc_dir: str | None = None) -> dict:
    dropped = ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="tests.settings")
    if multiproc_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    proc = subprocess.run(
        [sys.executable, "-m", "tests.metrics_process", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_disabled_needs_no_prometheus_client():
    """With prometheus_client made unimportable, the middleware still serves and counts nothing."""
    assert run_process("3", "1", "--disabled") == {"prometheus": False, "counted": 0}


def test_multiprocess_mode_adds_up_the_workers(tmp_path, client, monkeypatch):
    directory = str(tmp_path)
    run_process("2", "7", multiproc_dir=directory)
    run_process("3", "9", multiproc_dir=directory)
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("corsadmin_decisions_total", policy="workers", outcome="allowed") == 5
    assert value("corsadmin_decisions_total", policy="(none)", outcome="refused") == 2
    assert value("corsadmin_snapshot_generation") == 7  # the stalest worker


def test_a_worker_exiting_leaves_its_counts_in_the_multiprocess_directory(tmp_path):
    run_process("4", "3", "--exit", multiproc_dir=str(tmp_path))
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    allowed = {"policy": "workers", "outcome": "allowed"}
    assert registry.get_sample_value("corsadmin_decisions_total", allowed) == 4


@pytest.mark.django_db
def test_the_view_reads_every_worker_in_multiprocess_mode(tmp_path, scraper, enabled, monkeypatch):
    run_process("2", "7", multiproc_dir=str(tmp_path))
    run_process("3", "9", multiproc_dir=str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = scraper.get("/metrics/").content.decode()
    assert 'corsadmin_decisions_total{outcome="allowed",policy="workers"} 5.0' in text


def test_a_deleted_policys_entries_leave_the_scrape_in_multiprocess_mode(tmp_path):
    dropped = ("DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="tests.settings", PROMETHEUS_MULTIPROC_DIR=str(tmp_path)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.metrics_process", "1", "5", "--delete"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    scrape = json.loads(proc.stdout.strip().splitlines()[-1])["scrape"]
    entries = sorted(line for line in scrape.splitlines() if line.startswith("corsadmin_snapshot_entries{"))
    assert entries == ['corsadmin_snapshot_entries{policy="kept"} 1.0']
    assert "Warning" not in proc.stderr, proc.stderr  # prometheus_client's "Removal of labels ..."


# --- who may read it --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_view_needs_credentials(client, enabled):
    response = client.get("/metrics/")
    assert (response.status_code, response["WWW-Authenticate"]) == (401, "Token")


@pytest.mark.django_db
def test_the_view_needs_the_view_policy_permission(enabled):
    from .api_fixtures import make_user, token_client

    assert token_client(make_user("someone")).get("/metrics/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("opted_in", [False, True])
def test_the_view_is_never_readable_cross_origin_with_credentials(client, enabled, admin_user, opted_in):
    """A policy allowing credentials on ^/ answers everywhere else; never on /metrics/, even
    where ALLOW_CREDENTIALS_ON_ADMIN opens the admin and the API."""
    from corsadmin.refresh import holder

    enabled.CORSADMIN = {**enabled.CORSADMIN, "ALLOW_CREDENTIALS_ON_ADMIN": opted_in}
    Policy.objects.filter(name="default").update(allow_credentials=True)
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    client.force_login(admin_user)
    response = client.get("/metrics/", HTTP_ORIGIN=APP)
    assert response.status_code == 200
    assert [h for h in response.headers if h.lower().startswith("access-control-")] == []
    assert client.get(ECHO, HTTP_ORIGIN=APP)["Access-Control-Allow-Credentials"] == "true"


# --- logs ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refresh_failure_log_record_has_structured_fields(client, monkeypatch, caplog):
    AllowedOrigin.objects.create(origin=APP)
    client.get(ECHO, HTTP_ORIGIN=APP)
    from corsadmin.refresh import holder

    generation = holder.peek().generation

    def fail(self):
        raise OperationalError("database is down")

    monkeypatch.setattr(SnapshotBuilder, "update", fail)
    holder.mark_dirty()
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        client.get(ECHO, HTTP_ORIGIN=APP)
    [record] = [r for r in caplog.records if r.name == "corsadmin"]
    assert (record.event, record.service, record.generation) == ("refresh_failed", "database", generation)
    monkeypatch.undo()
    caplog.clear()
    holder.mark_dirty()
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        client.get(ECHO, HTTP_ORIGIN=APP)
    [record] = [r for r in caplog.records if r.name == "corsadmin"]
    assert (record.event, record.service) == ("refresh_recovered", "database")


@pytest.mark.django_db
def test_an_ignored_stored_origin_names_the_origin_and_policy(client, caplog):
    AllowedOrigin.objects.create(origin=APP)
    from django.db import connection

    with connection.cursor() as cursor:  # written around validation
        cursor.execute(f"UPDATE {AllowedOrigin._meta.db_table} SET origin = %s", ["not an origin"])
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        client.get(ECHO, HTTP_ORIGIN=APP)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "ignored_origin"]
    assert (record.origin, record.policy) == ("not an origin", "default")


def test_default_fields_let_a_format_name_them_on_any_record():
    from corsadmin.logging import DefaultFields

    formatter = logging.Formatter("%(levelname)s event=%(event)s generation=%(generation)s %(message)s")
    plain = logging.LogRecord("django", logging.INFO, __file__, 1, "hello", None, None)
    assert DefaultFields().filter(plain) is True
    assert formatter.format(plain) == "INFO event=- generation=- hello"
    structured = logging.LogRecord("corsadmin", logging.WARNING, __file__, 1, "down", None, None)
    structured.event, structured.generation = "refresh_failed", 12
    DefaultFields().filter(structured)
    assert formatter.format(structured) == "WARNING event=refresh_failed generation=12 down"
