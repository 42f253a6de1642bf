"""A process that counts decisions through the middleware and flushes its metrics.

    python -m tests.metrics_process ALLOWED GENERATION [--disabled | --exit | --delete]

Used by test_metrics.py: two of these with one PROMETHEUS_MULTIPROC_DIR stand for two
gunicorn workers; ``--disabled`` checks that nothing imports prometheus_client; ``--exit``
counts with a background writer whose interval is an hour and never flushes: only the
flush at exit can move the counts; ``--delete`` then serves a snapshot without the policy
(deleted), flushes again and prints the view's text (``exposition``) as ``scrape``. No
database: the snapshot is built in memory.
"""

from __future__ import annotations

import json
import math
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main() -> None:
    allowed, generation = int(sys.argv[1]), int(sys.argv[2])
    disabled = "--disabled" in sys.argv
    at_exit = "--exit" in sys.argv
    delete = "--delete" in sys.argv
    if disabled:
        sys.modules["prometheus_client"] = None  # type: ignore[assignment]  # any import fails
    import django

    django.setup()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings

    from corsadmin import metrics
    from corsadmin.middleware import CorsMiddleware
    from corsadmin.refresh import holder
    from corsadmin.snapshot import CompiledPolicy, Snapshot

    with override_settings(
        CORSADMIN={
            **settings.CORSADMIN,
            "METRICS": not disabled,
            "TELEMETRY": False,
            "REFRESH": "background",
            **({"METRICS_FLUSH": "background", "METRICS_INTERVAL": 3600} if at_exit else {}),
        }
    ):
        holder._snapshot = Snapshot(
            [CompiledPolicy(name="workers", entries=[(1, "https://app.example.com", math.inf)])], generation
        )
        holder._running = True  # serve this snapshot; no refresher, no database
        middleware = CorsMiddleware(lambda request: HttpResponse("ok"))
        factory = RequestFactory()
        for _ in range(allowed):
            middleware(factory.get("/", HTTP_ORIGIN="https://app.example.com"))
        middleware(factory.get("/", HTTP_ORIGIN="https://evil.example.net"))
        if not disabled and not at_exit:
            metrics.flush()
        imported = sys.modules.get("prometheus_client") is not None
        result: dict = {"prometheus": imported, "counted": len(metrics._decisions)}
        if delete:
            holder._snapshot = Snapshot(
                [CompiledPolicy(name="kept", entries=[(2, "https://kept.example.com", math.inf)])],
                generation + 1,
            )
            metrics.flush()
            result["scrape"] = metrics.exposition()[0].decode()
        print(json.dumps(result))


if __name__ == "__main__":
    main()
