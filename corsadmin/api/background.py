"""The API's view of background imports (``corsadmin.import_jobs``): the 202 that starts one,
and ``imports/<id>/``, its state, progress, counts and errors."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import import_jobs
from ..models import ImportJob


def accepted(request: Request, job: ImportJob) -> Response:
    body = job_body(request, job)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


def job_body(request: Request, job: ImportJob) -> dict[str, Any]:
    state = import_jobs.state(job)
    body: dict[str, Any] = {
        "id": str(job.pk),
        "url": request.build_absolute_uri(reverse("corsadmin-api:import-job", args=[job.pk])),
        "state": state,
        "replace": job.replace,
        "origins": job.origins,
        "stage": job.stage,
        "done": job.done,
        "total": job.total,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
    if state == ImportJob.SUCCEEDED:
        body["result"] = job.result
    elif state == ImportJob.FAILED:
        body["errors"] = import_jobs.errors(job)
    return body
