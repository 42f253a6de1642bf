"""The pieces of the refusal and allowed paths, timed one by one in one bench-site process.

    python bench/refusal_parts.py

Builds the micro bench's site (``corsadmin exact N=10``, SQLite in a temporary directory),
then times each piece with ``timeit`` on the process's CPU time (``time.process_time``:
other processes on a shared machine move it less than the wall clock), best of 7 rounds
of many calls, in ns per call (a lambda's call included). Indicative only: the targets are
judged with ``bench/micro.py``. Copied into a tree exported from an older revision, it
times what that revision has (pieces it lacks are left out).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="corsadmin-parts-"))
    spec = {"name": "micro", "kind": "corsadmin", "n": 10, "list": "exact", "db": str(tmp / "db.sqlite3")}
    os.environ.update(BENCH_SITE=json.dumps(spec), DJANGO_SETTINGS_MODULE="bench.settings")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "bench.worker", "populate"], cwd=ROOT, env=env, check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse

    from bench.worker import environ
    from corsadmin import middleware, usage
    from corsadmin.protected import guard
    from corsadmin.refresh import holder

    snapshot = holder.get()
    asked, requests, decisions = {}, {}, {}
    for case in ("allowed", "refused"):
        env_ = environ(case, spec)
        env_["wsgi.input"] = io.BytesIO(b"")
        requests[case] = WSGIRequest(env_)
        asked[case] = middleware._Request(requests[case])
        decisions[case] = asked[case].decide(snapshot)
    refused, allowed = decisions["refused"], decisions["allowed"]
    origin, path = asked["refused"].origin, asked["refused"].path
    response = HttpResponse("ok")
    pieces = {
        "refused: note_refusal (all of its counting)": lambda: asked["refused"].note_refusal(
            requests["refused"], refused, snapshot
        ),
        "allowed: note_refusal (returns at once)": lambda: asked["allowed"].note_refusal(
            requests["allowed"], allowed, snapshot
        ),
        "allowed: usage.allowed": lambda: usage.allowed("default", allowed.entry_id),
        "allowed: guard": lambda: guard(allowed, path),
        "allowed: one more header (Access-Control-Allow-Origin)": lambda: response.__setitem__(
            "Access-Control-Allow-Origin", "https://app5.example.com"
        ),
        "both: decide (remembered)": lambda: asked["refused"].decide(snapshot),
    }
    try:
        from corsadmin import refusals
    except ImportError:  # an older revision
        pass
    else:
        pieces["refused: refusals.count"] = lambda: refusals.count(origin, path, "default", "")
    if hasattr(usage, "covering"):
        pieces["refused: usage.covering (decision names none)"] = lambda: usage.covering(snapshot, path)
    if hasattr(middleware, "_FIRST"):
        pieces["refused: receivers connected? (inline)"] = lambda: (
            middleware._FIRST.receivers or middleware._LAST.receivers
        )
    else:
        pieces["refused: receivers connected? (_receivers_listening)"] = middleware._receivers_listening
    number = 200_000
    for name, piece in pieces.items():
        best = min(timeit.repeat(piece, number=number, repeat=7, timer=time.process_time))
        print(f"{best / number * 1e9:7.0f} ns  {name}")


if __name__ == "__main__":
    main()
