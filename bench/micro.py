"""The CORS middleware alone: its cost per request, without the rest of Django.

    python bench/micro.py                 # corsadmin (metrics off and on) vs django-cors-headers, N=10
    python bench/micro.py --against HEAD  # also corsadmin's middleware.py + snapshot.py at a git revision
    python bench/micro.py --list wildcard # corsadmin's list of subdomain wildcards (or mixed)

Each variant runs in its own process (its own settings), wrapped around a view that
returns ``HttpResponse("ok")``. Every call through the middleware is paired with a
call to the bare view (alternating), so the cost is given relative to that view (the
machine's speed drifts; a ratio does not) and in µs at this run's median view time.
Used to measure the hot-path optimisations in isolation; run.py gives the real figures.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("allowed", "refused", "none", "preflight")


def _load_revision(rev: str) -> None:
    """Swap in corsadmin's middleware.py and Snapshot.decide as they were at ``rev``."""
    import corsadmin.snapshot as current_snapshot

    modules = {}
    for name in ("snapshot", "middleware"):
        source = subprocess.run(
            ["git", "show", f"{rev}:corsadmin/{name}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        module = types.ModuleType(f"corsadmin._rev_{name}")
        module.__package__ = "corsadmin"
        sys.modules[module.__name__] = module
        exec(compile(source, f"{rev}:corsadmin/{name}.py", "exec"), module.__dict__)  # noqa: S102
        modules[name] = module
    current_snapshot.Snapshot.decide = modules["snapshot"].Snapshot.decide  # type: ignore[method-assign]
    sys.modules["corsadmin.middleware"] = modules["middleware"]


def child(variant: dict) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse

    from bench.worker import environ

    if variant.get("rev"):
        _load_revision(variant["rev"])
    site = settings.BENCH_SITE

    def view(request):  # type: ignore[no-untyped-def]
        return HttpResponse("ok")

    module, cls = settings.MIDDLEWARE[0].rsplit(".", 1)
    middleware = getattr(importlib.import_module(module), cls)(view)
    clock = time.perf_counter
    out = {}
    for case in CASES:
        env = environ(case, site)
        env["wsgi.input"] = io.BytesIO(b"")
        rel, base = [], []
        for _ in range(variant["reps"]):
            requests = [WSGIRequest(dict(env)) for _ in range(variant["n"])]
            a, b = [], []
            for i, request in enumerate(requests):
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
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", help="a git revision of corsadmin/middleware.py and snapshot.py")
    parser.add_argument(
        "--list", default="exact", choices=("exact", "wildcard", "mixed"), help="corsadmin's list"
    )
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="each variant's process runs this many times, interleaved"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="corsadmin-micro-"))
    db = str(tmp / "db.sqlite3")
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="bench.settings")
    spec = {"name": "micro", "kind": "corsadmin", "n": 10, "list": args.list, "db": db}
    subprocess.run(
        [sys.executable, "-m", "bench.worker", "populate"],
        env=dict(env, BENCH_SITE=json.dumps(spec)),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    variants = [
        ("cors-headers exact N=10", {"kind": "cors-headers", "list": "exact"}, None),
        (f"corsadmin {args.list} N=10 (working tree)", {"kind": "corsadmin"}, None),
        (
            f"corsadmin {args.list} N=10 (working tree, METRICS on)",
            {"kind": "corsadmin", "corsadmin": {"METRICS": True}},
            None,
        ),
    ]
    if args.against:
        variants.append((f"corsadmin {args.list} N=10 ({args.against})", {"kind": "corsadmin"}, args.against))
    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, kind, rev in variants:
            site = dict(spec, **kind)
            variant = {"rev": rev, "reps": args.reps, "n": args.n}
            proc = subprocess.run(
                [sys.executable, str(Path(__file__)), "--child", json.dumps(variant)],
                env=dict(env, BENCH_SITE=json.dumps(site)),
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                sys.exit(proc.stderr)
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    view_us = statistics.median(r[c]["view_us"] for rs in results.values() for r in rs for c in CASES)
    print(
        f"Middleware cost per request, µs at a view time of {view_us:.1f} µs "
        f"(median of {args.rounds} processes × {args.reps} × {args.n} pairs)\n"
    )
    print("| variant | " + " | ".join(CASES) + " |")
    print("|---" * (len(CASES) + 1) + "|")
    ref = {c: statistics.median(r[c]["relative"] for r in results["cors-headers exact N=10"]) for c in CASES}
    for name, runs in results.items():
        cells = []
        for case in CASES:
            rel = statistics.median(r[case]["relative"] for r in runs)
            cells.append(
                f"{rel * view_us:.1f}"
                + ("" if name.startswith("cors-headers") else f" ({rel / ref[case]:.2f}×)")
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n(×: relative to django-cors-headers)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(json.loads(sys.argv[2]))
    else:
        main()
