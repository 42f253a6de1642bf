"""Demo endpoints: a cross-origin client can call these to see corsadmin at work.

With ``CORSADMIN_DEBUG_STATS=1`` in the environment (the multi-worker tests set it;
never in production), ``/demo/echo/`` also reports what this process's refresh layer
did: the counters of the snapshot holder's ``stats()`` (rebuilds, reads of the
database's generation stamp, the generation served).
"""

import os
import threading
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

DEBUG_STATS = "CORSADMIN_DEBUG_STATS"


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    """Any method: describe the request back as JSON."""
    data: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": request.GET.dict(),
        "origin": request.headers.get("Origin"),
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", "replace")[:10000],
        "pid": os.getpid(),
    }
    if os.environ.get(DEBUG_STATS) == "1":
        data["stats"] = refresh_stats(request)
    response = JsonResponse(data)
    response["X-Request-Id"] = str(uuid.uuid4())
    return response


def error(request: HttpRequest) -> JsonResponse:
    """Always fails, so a 500 shows that errors carry CORS headers too."""
    raise RuntimeError("demo error: this endpoint always fails")


# --- debug-only counters (CORSADMIN_DEBUG_STATS=1) ----------------------------------

_counts = {"requests": 0}
_counts_lock = threading.Lock()


def refresh_stats(request: HttpRequest) -> dict[str, Any]:
    """This process's refresh layer: ``rebuilds`` (snapshots built: full loads and
    incremental updates), ``db_checks`` (reads of the database's generation stamp), the
    ``generation`` of the snapshot that decided this request, and ``requests``: this
    request's number in the order the process served them (a client's clock may see two
    answers in the other order)."""
    from corsadmin.refresh import holder

    with _counts_lock:
        _counts["requests"] += 1  # the order this process served its requests in
        counts = dict(_counts)
    stats = holder.stats()
    # The snapshot that decided this request: the refresher may have swapped in a newer one
    # since the middleware asked, and that one must not be reported as the decider.
    decided = getattr(request, "_cors_snapshot", None)
    if decided is not None:
        stats["generation"] = decided.generation
    return {
        **counts,
        **stats,
        "handler": type(request).__name__,
    }
