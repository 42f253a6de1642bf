"""The per-request cost of usage counting (issue 15): the middleware with and without it.

    python bench/usage.py              # 10 entries, 101 rounds of 2 × 2 × 1000 requests per case
    python bench/usage.py --entries 100000

One process, one snapshot built in memory (no database), corsadmin's middleware around
a view that returns ``HttpResponse("ok")``. Each round times a batch of requests with
counting on and off (``usage.ENABLED``) in the order on, off, off, on (or off, on, on,
off), so both see the same machine; the cost is the median over rounds of (on − off) per request, and
the ratio is on ÷ off of the middleware's own time (the view's time subtracted, timed in
the same round). The in-memory counts are cleared between rounds, as the flusher's swap
does. ``usage.allowed()`` alone is timed with ``timeit`` as a floor.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

CASES = {
    "allowed": {"HTTP_ORIGIN": "https://o1.example.com"},
    "refused": {"HTTP_ORIGIN": "https://evil.example.net"},
    "preflight (allowed)": {
        "HTTP_ORIGIN": "https://o1.example.com",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings

    from corsadmin import usage
    from corsadmin.middleware import CorsMiddleware
    from corsadmin.refresh import holder
    from corsadmin.snapshot import CompiledPolicy, Snapshot

    override_settings(CORSADMIN={**settings.CORSADMIN, "TELEMETRY": False, "USAGE_FLUSH": "manual"}).enable()
    entries = [(i, f"https://o{i}.example.com", math.inf) for i in range(args.entries)]
    holder._snapshot = Snapshot(
        [CompiledPolicy(name="default", entries=entries, allow_methods=["GET", "PUT"])], 1
    )
    holder._running = True  # serve this snapshot; no refresher, no database

    def view(request):  # type: ignore[no-untyped-def]
        return HttpResponse("ok")

    middleware = CorsMiddleware(view)
    factory = RequestFactory()
    clock = time.perf_counter
    print(
        f"Usage counting, µs per request ({args.entries} entries; median of {args.rounds} rounds "
        f"× {args.batch} requests per variant; Python {sys.version.split()[0]})\n"
    )
    print("| case | middleware, counting off | counting on | cost of counting | on ÷ off |")
    print("|---|---|---|---|---|")
    for case, headers in CASES.items():
        method = "options" if "preflight" in case else "get"
        requests = [getattr(factory, method)("/api/x", **headers) for _ in range(args.batch)]
        costs, offs, ons = [], [], []
        for round_ in range(args.rounds):
            timings: dict[bool | None, float] = {True: 0.0, False: 0.0, None: 0.0}
            # ABBA (then BAAB), so a drift in the machine's speed weighs on both alike; None:
            # the bare view, for the middleware's own time.
            order = (True, False, False, True) if round_ % 2 else (False, True, True, False)
            for enabled in (*order, None, None):
                usage._entries.clear()
                usage._policies.clear()
                usage._hour_end = 0.0
                usage.ENABLED = bool(enabled)
                call = view if enabled is None else middleware
                t0 = clock()
                for request in requests:
                    call(request)
                timings[enabled] += (clock() - t0) / args.batch / 2
            costs.append(timings[True] - timings[False])
            offs.append(timings[False] - timings[None])
            ons.append(timings[True] - timings[None])
        off, on = statistics.median(offs), statistics.median(ons)
        print(
            f"| {case} | {off * 1e6:.2f} | {on * 1e6:.2f} | **{statistics.median(costs) * 1e6:+.2f}** "
            f"| {on / off:.3f}× |"
        )
    usage.ENABLED = True
    usage._entries.clear()
    usage._policies.clear()
    n = 200_000
    floor = min(timeit.repeat(lambda: usage.allowed("default", 1), number=n, repeat=5)) / n
    print(f"\n`usage.allowed()` alone: {floor * 1e6:.3f} µs per call (best of 5 × {n:,})")


if __name__ == "__main__":
    main()
