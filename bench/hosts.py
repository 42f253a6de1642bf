"""Per-host policies: the middleware's cost per request with 20 per-host policies vs 1 policy.

    python bench/hosts.py                # N=1000 requests x 15 repetitions x 3 rounds
    python bench/hosts.py --reps 5 --rounds 1

The same allow-list (1,000 exact origins) is held either by one policy for every host,
or by 20 policies of 50 origins each, one per host (``site0.example.com`` ...). A
third variant adds 20 report-only policies (one per host, same paths) beside the 20
enforcing ones. Requests carry ``Host: site7.example.com`` and an origin listed for
that host (allowed), an unlisted one (refused), or a preflight. "warm": the same
request repeated (the snapshot's decision memo answers); "cold": the memo emptied
before every request (the whole decision: host index, policies, entry tables).

As in bench/micro.py, each call through the middleware is paired with a call to the
bare view (alternating); the cost is reported relative to the view and in µs at this
run's median view time. The snapshot is built in memory and pinned: no database.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICIES = 20
PER_POLICY = 50
HOST = "site7.example.com"
CASES = ("allowed", "refused", "preflight")


def setup_django() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "corsadmin"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ROOT_URLCONF="bench.hosts",
        CORSADMIN={"TELEMETRY_FLUSH": "manual", "METRICS": False},
        USE_TZ=True,
    )
    django.setup()


urlpatterns: list[Any] = []  # ROOT_URLCONF: the middleware is called directly


def origin(host: int, i: int) -> str:
    return f"https://app{i}.customer{host}.example"


def build(variant: str) -> Any:
    from corsadmin.snapshot import CompiledPolicy, Snapshot

    options = {"allow_methods": ["GET", "POST", "PUT"], "allow_headers": ["content-type"], "max_age": 600}
    if variant == "1 policy":
        entries = [
            (h * PER_POLICY + i, origin(h, i), float("inf"))
            for h in range(POLICIES)
            for i in range(PER_POLICY)
        ]
        return Snapshot([CompiledPolicy(name="default", entries=entries, **options)])
    policies = []
    for h in range(POLICIES):
        entries = [(h * PER_POLICY + i, origin(h, i), float("inf")) for i in range(PER_POLICY)]
        policies.append(
            CompiledPolicy(name=f"site{h}", hosts=[f"site{h}.example.com"], entries=entries, **options)
        )
        if variant == "20 per-host + 20 report-only":
            policies.append(
                CompiledPolicy(
                    name=f"strict{h}",
                    hosts=[f"site{h}.example.com"],
                    mode="report",
                    entries=entries[: PER_POLICY // 2],
                    **options,
                )
            )
    return Snapshot(policies)


def environ(case: str) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/items/",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "HTTP_HOST": HOST,
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        # the middle of host 7's list (reported below: half of its origins are in the report-only list)
        "HTTP_ORIGIN": origin(7, 10),
    }
    if case == "refused":
        env["HTTP_ORIGIN"] = "https://evil.example.net"
    elif case == "preflight":
        env.update(REQUEST_METHOD="OPTIONS", HTTP_ACCESS_CONTROL_REQUEST_METHOD="PUT")
    return env


def measure(variant: str, warm: bool, reps: int, n: int) -> dict[str, dict[str, float]]:
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse

    from corsadmin.middleware import CorsMiddleware
    from corsadmin.refresh import holder

    snapshot = build(variant)
    holder.get = lambda: snapshot  # type: ignore[method-assign]  # pinned: no database, no refresh

    def view(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    middleware = CorsMiddleware(view)
    clock = time.perf_counter
    memo = snapshot._memo
    out = {}
    for case in CASES:
        env = environ(case)
        rel, base = [], []
        for _ in range(reps):
            requests = [WSGIRequest(dict(env)) for _ in range(n)]
            a, b = [], []
            for i, request in enumerate(requests):
                if not warm:
                    memo.clear()
                    snapshot.hosts._memo.clear()
                if i % 2:
                    t0 = clock()
                    middleware(request)
                    t1 = clock()
                    view(request)
                    t2 = clock()
                    a.append(t1 - t0)
                    b.append(t2 - t1)
                else:
                    t0 = clock()
                    view(request)
                    t1 = clock()
                    middleware(request)
                    t2 = clock()
                    b.append(t1 - t0)
                    a.append(t2 - t1)
            rel.append(statistics.median(a) / statistics.median(b) - 1)
            base.append(statistics.median(b))
        out[case] = {"relative": statistics.median(rel), "view_us": statistics.median(base) * 1e6}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="every variant measured this many times, interleaved"
    )
    args = parser.parse_args()
    setup_django()
    from corsadmin.telemetry import recorder

    variants = ("1 policy", "20 per-host policies", "20 per-host + 20 report-only")
    results: dict[tuple[str, bool], list[dict[str, dict[str, float]]]] = {}
    for _ in range(args.rounds):
        for warm in (True, False):
            for variant in variants:
                results.setdefault((variant, warm), []).append(measure(variant, warm, args.reps, args.n))
                recorder._take()  # the refusals counted meanwhile: dropped, never written
    view_us = statistics.median(r[c]["view_us"] for rs in results.values() for r in rs for c in CASES)
    print(
        f"view alone: {view_us:.2f} µs (median); middleware cost over the view, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'variant':<32}{'memo':<6}" + "".join(f"{c:>18}" for c in CASES))
    for (variant, warm), runs in results.items():
        cells = []
        for case in CASES:
            rel = statistics.median(r[case]["relative"] for r in runs)
            cells.append(f"{rel * view_us:6.2f} µs ({rel:+.0%})")
        print(f"{variant:<32}{'warm' if warm else 'cold':<6}" + "".join(f"{c:>18}" for c in cells))
    print(
        json.dumps({f"{v} / {'warm' if w else 'cold'}": runs for (v, w), runs in results.items()}),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
