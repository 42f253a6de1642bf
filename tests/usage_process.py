"""A process that counts allowed and refused requests through the middleware and flushes
its usage counts into the database of ``DATABASE_URL``.

    python -m tests.usage_process ENTRY_ID ALLOWED ROUNDS CLOCK

Used by test_usage_processes.py: two of these stand for two gunicorn workers flushing
into the same rows. The snapshot is built in memory (entry ENTRY_ID allows
https://app.example.com); the clock is fixed at CLOCK so both count in the same hour.
"""

from __future__ import annotations

import json
import math
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main() -> None:
    entry_id, allowed, rounds, at = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory

    from corsadmin import usage
    from corsadmin.middleware import CorsMiddleware
    from corsadmin.refresh import holder
    from corsadmin.snapshot import CompiledPolicy, Snapshot

    usage.clock = lambda: at
    holder._snapshot = Snapshot(
        [CompiledPolicy(name="default", entries=[(entry_id, "https://app.example.com", math.inf)])], 1
    )
    holder._running = True  # serve this snapshot; no refresher
    middleware = CorsMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()
    written = 0
    for _ in range(rounds):
        for _ in range(allowed):
            middleware(factory.get("/", HTTP_ORIGIN="https://app.example.com"))
        middleware(factory.get("/", HTTP_ORIGIN="https://evil.example.net"))
        written += usage.flush()
    print(json.dumps({"written": written}))


if __name__ == "__main__":
    main()
