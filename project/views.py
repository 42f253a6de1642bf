"""Demo endpoints: a cross-origin client can call these to see corsadmin at work.

With ``CORSADMIN_DEBUG_STATS=1`` in the environment (the multi-worker tests set it;
never in production), ``/demo/echo/`` also reports what this process's refresh layer
did: snapshot rebuilds and generation, and the database queries it issued, counted
by a wrapper on every database connection of the process (see ``install_query_counter``).
"""

import os
import threading
import uuid
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created
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

_counts = {"queries": 0, "requests": 0}
_counts_lock = threading.Lock()


def _count_query(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    """Count every query this process runs."""
    with _counts_lock:
        _counts["queries"] += 1
    return execute(sql, params, many, context)


def _wrap(connection: Any, **kwargs: Any) -> None:
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


def install_query_counter() -> None:
    """Count every query of this process: wrap each database connection as it opens."""
    connection_created.connect(_wrap, dispatch_uid="project-debug-stats")
    for connection in connections.all(initialized_only=True):
        _wrap(connection)


def refresh_stats(request: HttpRequest) -> dict[str, Any]:
    """This process's refresh layer: ``rebuilds`` (snapshots built: full loads and
    incremental updates), ``db_checks`` (reads of the database's generation stamp), the
    ``generation`` of the snapshot that decided this request, every query the process ran,
    and ``requests``: this request's number in the order the process served them (a client's
    clock may see two answers in the other order)."""
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
