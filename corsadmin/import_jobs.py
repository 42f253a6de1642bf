"""API imports too large to finish inside a request, run in the background and polled.

``POST /api/cors/import/`` answers 202 with a job (``ImportJob``) instead of working in the
request when the document names more than ``CORSADMIN["IMPORT_JOB_ORIGINS"]`` origins, or when
the request runs out of time (``budget``) and was rolled back. The job runs in a thread of the
process that accepted it: the same ``documents.import_document``, one transaction, all or
nothing, its history written as for any import. ``GET /api/cors/imports/<id>/`` reads its state,
progress, counts and errors.

A thread dies with its process (a deploy, a crash, a worker recycled): the transaction then
rolls back and nothing is changed. On PostgreSQL the job's row carries a heartbeat, written by
another thread on its own connection every ``HEARTBEAT`` seconds; a job whose heartbeat is
older than ``LOST_AFTER`` reads as failed ("lost"). SQLite has one writer, held by the import,
so there the row changes only when the job starts and ends.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, cast

from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import conf, deadlines, documents, progress
from .fields import non_field_key
from .history import User, user_id
from .models import ImportJob

logger = logging.getLogger("corsadmin")

HEARTBEAT = 2.0  # seconds between two writes of a running job's heartbeat
LOST_AFTER = timedelta(seconds=30)
KEEP_FOR = timedelta(days=7)  # finished jobs older than this are deleted when a new one starts
STATEMENT_TIMEOUTS = 30  # a statement of the job may take this many SERVICE_TIMEOUTs


def threshold() -> int:
    """Documents naming more origins than this are imported in the background."""
    return int(conf.get("IMPORT_JOB_ORIGINS"))


def origin_count(document: Any) -> int:
    """How many origins a document names (0 for one too malformed to say: the import refuses it)."""
    policies = document.get("policies") if isinstance(document, dict) else None
    if not isinstance(policies, list):
        return 0
    return sum(
        len(p["origins"]) for p in policies if isinstance(p, dict) and isinstance(p.get("origins"), list)
    )


def start(document: Any, *, origins: int, replace: bool, user: User) -> ImportJob:
    """Record a job for ``document`` (naming ``origins`` origins: ``origin_count``) and start
    importing it in a thread of this process."""
    ImportJob.objects.filter(finished_at__lt=timezone.now() - KEEP_FOR).delete()
    creator = user if user_id(user) is not None else None
    # No heartbeat on SQLite (see above): there a job is never taken for lost.
    beats = timezone.now() if connection.vendor != "sqlite" else None
    job = ImportJob.objects.create(
        replace=replace,
        origins=origins,
        created_by=creator,  # type: ignore[misc]  # AbstractBaseUser: the AUTH_USER_MODEL
        heartbeat_at=beats,
    )
    # Not a daemon: a gracefully stopping server lets the job finish within its grace period.
    runner = threading.Thread(
        target=_run, args=(job.pk, document, replace, creator), name=f"corsadmin-import-{job.pk}"
    )
    # After the job's row is committed (a site with ATOMIC_REQUESTS commits it with the answer).
    transaction.on_commit(runner.start)
    return job


class _JobProgress:
    """The stage and steps of the running import, read by the heartbeat (``progress.Tracker``)."""

    def __init__(self) -> None:
        self.name, self.done, self.total = "", 0, 0

    def stage(self, description: str, total: int | None, unit: str) -> None:
        self.name, self.done, self.total = description, 0, total or 0

    def update(self, steps: int) -> None:
        self.done += steps

    def close(self) -> None:
        pass


def _run(job_id: Any, document: Any, replace: bool, user: User) -> None:
    jobs = ImportJob.objects.filter(pk=job_id)
    tracker = _JobProgress()
    stop = threading.Event()
    beat = threading.Thread(
        target=_beat, args=(job_id, tracker, stop), name="corsadmin-import-heartbeat", daemon=True
    )
    try:
        now = timezone.now()
        beats = now if connection.vendor != "sqlite" else None
        jobs.update(state=ImportJob.RUNNING, started_at=now, heartbeat_at=beats)
        if beats is not None:
            beat.start()
        seconds = deadlines.service_timeout() * STATEMENT_TIMEOUTS
        # The outcome is written in the import's own transaction: a job never reads as lost
        # (nothing changed) once its import has committed.
        with deadlines.deadline(seconds), progress.tracked(tracker), transaction.atomic():
            result = documents.import_document(document, replace=replace, user=user)
            _stop(stop, beat)  # its next write would wait for this transaction's row lock
            body: dict[str, Any] = {"replace": replace, **result.as_dict()}
            if result.warnings:
                body["warnings"] = result.warnings
            done = {"stage": "", "done": tracker.done, "total": tracker.total}
            jobs.update(state=ImportJob.SUCCEEDED, result=body, finished_at=timezone.now(), **done)
    except documents.ImportRefused as exc:
        _failed(jobs, exc.errors)
    except Exception as exc:  # the job must end in a state the client can read
        logger.exception("corsadmin: the background import %s failed", job_id)
        message = _("The import failed (%(error)s); nothing was changed. Try again.") % {
            "error": type(exc).__name__
        }
        _failed(jobs, {non_field_key(): [message]})
    finally:
        _stop(stop, beat)
        connections.close_all()


def _stop(stop: threading.Event, beat: threading.Thread) -> None:
    stop.set()
    if beat.is_alive():
        beat.join()


def _failed(jobs: Any, errors: dict[str, Any]) -> None:
    try:
        jobs.update(state=ImportJob.FAILED, errors=errors, finished_at=timezone.now())
    except Exception:  # the database is gone: the heartbeat has stopped, and the job reads as lost
        logger.exception("corsadmin: could not record the end of a background import")


def _beat(job_id: Any, tracker: _JobProgress, stop: threading.Event) -> None:
    """Write the job's heartbeat and progress until ``stop``; errors are logged, not raised."""
    jobs = ImportJob.objects.filter(pk=job_id, state=ImportJob.RUNNING)
    try:
        while not stop.wait(HEARTBEAT):
            try:
                with deadlines.deadline():
                    jobs.update(
                        heartbeat_at=timezone.now(),
                        stage=tracker.name,
                        done=tracker.done,
                        total=tracker.total,
                    )
            except Exception as exc:
                logger.warning("corsadmin: the heartbeat of import %s was not written: %s", job_id, exc)
    finally:
        connections.close_all()


def state(job: ImportJob) -> str:
    """The job's state, "failed" for one whose heartbeat stopped (its process is gone)."""
    if job.state in (ImportJob.QUEUED, ImportJob.RUNNING) and job.heartbeat_at is not None:
        if timezone.now() - job.heartbeat_at > LOST_AFTER:
            return ImportJob.FAILED
    return job.state


def errors(job: ImportJob) -> dict[str, Any]:
    if state(job) == ImportJob.FAILED and job.state != ImportJob.FAILED:
        return {
            non_field_key(): [
                _(
                    "The import was lost: the server process running it stopped before it finished. "
                    "Nothing was changed. Import the document again."
                )
            ]
        }
    return cast("dict[str, Any]", job.errors)
