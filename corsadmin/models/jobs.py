"""Imports the API runs in the background (``corsadmin.import_jobs``): one row per job.

A job is not configuration: never stamped with a generation, never exported. Its row says how
far it got and how it ended; the import itself is still one transaction, all or nothing.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """An API import too large to finish inside a request, polled at ``/api/cors/imports/<id>/``."""

    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATES = [
        (QUEUED, _("queued")),
        (RUNNING, _("running")),
        (SUCCEEDED, _("succeeded")),
        (FAILED, _("failed")),
    ]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(_("state"), max_length=10, choices=STATES, default=QUEUED)
    replace = models.BooleanField(_("replace"), default=False)
    origins = models.PositiveIntegerField(_("origins"), default=0, help_text=_("Origins the document names."))
    stage = models.CharField(_("stage"), max_length=20, blank=True)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    result = models.JSONField(_("result"), default=dict, blank=True)
    errors = models.JSONField(_("errors"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Written every few seconds while the job runs (not on SQLite, where the import holds the
    # only write lock): a job whose heartbeat stops was lost with its process (``lost()``).
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["finished_at"], name="corsadmin_importjob_finished")]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.state})"
