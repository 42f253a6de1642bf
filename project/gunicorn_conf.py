"""gunicorn settings for ``make run``: say where the site is only once it is listening; with
``--preload``, load the CORS allow-list once in the master, and bring the master's copy up to
date before each fork (a worker still confirms what it inherits before serving it: this only
keeps what it has to catch up small)."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

# Prometheus metrics from every worker (corsadmin.metrics): prometheus_client's multiprocess
# mode needs a directory that exists and is emptied at each start, known before any worker runs.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _var = Path(os.environ.get("CORSADMIN_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_var / "prometheus")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
for _stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):  # the last run's workers
    _stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker's live gauges (snapshot generation, age) leave the scrape with it."""
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Tell corsadmin when this worker would be killed for a request that runs too long
    (``--timeout``): an API import or export stops before that and answers 503 in JSON
    (corsadmin.budget), where the client would otherwise get a bare error page.

    Then start the allow-list's refresher (its first snapshot loads meanwhile) and import the
    URLconf (and with it the API's views), which Django otherwise does in the worker's first
    request: that request paid for it against its ``--timeout``, and on a loaded machine a short
    timeout killed it. The worker tells gunicorn it is alive before, as it does before each
    request."""
    from django.urls import get_resolver

    from corsadmin import budget
    from corsadmin.refresh import holder

    budget.gunicorn_worker(worker)
    holder.start()
    worker.notify()
    get_resolver().url_patterns  # noqa: B018  (imported for its side effect)


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's unwritten counts (usage, refused origins, metrics) and take its
    heartbeat off the list before it goes; the at-exit hook does it too, for servers run
    without this file."""
    from corsadmin.flusher import at_exit

    at_exit()


def pre_fork(server: Any, worker: Any) -> None:
    """gunicorn --preload: an incremental refresh of the master's snapshot (one query when
    nothing changed), in a thread joined before the fork; no connection is kept open."""
    if not server.cfg.preload_app:
        return
    from corsadmin.refresh import holder

    try:
        holder.preload()
    except Exception as exc:  # the worker catches up by itself: never stop the master forking
        server.log.warning("corsadmin: could not refresh the allow-list before a fork: %s", exc)
    # The loaded allow-list out of the collector's reach: a worker's collections would
    # otherwise write to every object's header and unshare the master's pages (copy-on-write).
    gc.freeze()


def when_ready(server: Any) -> None:
    if server.cfg.preload_app:  # gunicorn --preload: load the allow-list once, before the fork
        from corsadmin.refresh import holder

        holder.preload()
    for listener in server.LISTENERS:
        address = str(listener)  # "http://127.0.0.1:8000" for TCP, "unix:/path" for a socket
        url = address if "://" in address else f"http://{address}"
        print(
            f"Serving on {url}/ (admin: /admin/, API: /api/cors/, demo: /demo/echo/, /demo/error/)",
            flush=True,
        )
