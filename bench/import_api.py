"""Export and re-import N origins through the REST API under gunicorn (issues 21 and 23).

    python bench/import_api.py               # 30,000 origins, SQLite, gunicorn -w 2 --timeout 300
    python bench/import_api.py 100000 --timeout 30 --config --new   # the demo's gunicorn config,
                                             # then N new origins too
    python bench/import_api.py 100000 --database-url postgres://root@127.0.0.1:5432/bench_import

An import answered 202 (a background job: above IMPORT_JOB_ORIGINS, or out of the request's
time) is polled at its address until it ends; its time is from the POST to the end.

A temporary var directory (SQLite database, secret key) is made and removed; N origins
``https://h{i}.example.com`` go into the ``default`` policy with ``bulk_create``; an admin
and its API token are created. Then ``GET export/``, ``POST import/`` of that document (a
merge: every origin unchanged) and ``POST import/?replace=true``, each timed from the
request sent to the answer read, with the answer's status and the start of its body.
The load average is printed: on a busy machine the wall times move a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

SETUP = """
from corsadmin.models import AllowedOrigin, Policy
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_superuser("bench", "", "bench-password-123")
print(Token.objects.create(user=user).key)
policy = Policy.objects.get(name="default")
AllowedOrigin.objects.bulk_create(
    [AllowedOrigin(policy=policy, origin=f"https://h{i}.example.com", note="bench") for i in range(%d)],
    batch_size=2000,
)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, key: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/cors/{path}",
        data=body,
        method=method,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    sent = time.monotonic()
    try:
        with opener.open(request, timeout=3600) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    return status, data, time.monotonic() - sent


def finished(port: int, key: str, job: str, seconds: float) -> tuple[str, bytes, float]:
    """Poll a background import until it ends: ("202 → state", its last answer, seconds in all)."""
    started = time.monotonic() - seconds
    while True:
        _status, answer, _seconds = call(port, key, "GET", f"imports/{job}/")
        state = json.loads(answer)["state"]
        if state in ("succeeded", "failed"):
            return f"202 → {state}", answer, time.monotonic() - started
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origins", type=int, nargs="?", default=30_000)
    parser.add_argument("--timeout", type=int, default=300, help="gunicorn's --timeout")
    parser.add_argument("--config", action="store_true", help="with project/gunicorn_conf.py")
    parser.add_argument("--new", action="store_true", help="then import N new origins into a new policy")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    args = parser.parse_args()
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    var = Path(tempfile.mkdtemp(prefix="corsadmin-import-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CORSADMIN_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="project.settings")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    server = None
    try:
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        setup = subprocess.run(
            [python, "manage.py", "shell", "-c", SETUP % args.origins],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = setup.stdout.strip().splitlines()[-1]
        port = free_port()
        argv = [python, "-m", "gunicorn", "project.wsgi", "-w", "2", "--bind", f"127.0.0.1:{port}"]
        argv += ["--timeout", str(args.timeout)]
        if args.config:
            argv += ["--config", "python:project.gunicorn_conf"]
        with (var / "gunicorn.log").open("wb") as log:
            server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/demo/echo/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        print(f"{args.origins:,} origins, gunicorn --timeout {args.timeout}, load {os.getloadavg()[0]:.1f}")
        status, document, seconds = call(port, key, "GET", "export/")
        print(f"export/: {status}, {len(document):,} bytes, {seconds:.1f} s", flush=True)
        imports = [("import/", document), ("import/?replace=true", document)]
        if args.new:
            origins = [{"origin": f"https://n{i}.example.com"} for i in range(args.origins)]
            new = {"version": 1, "policies": [{"name": "bench-new", "url_regex": "^/", "origins": origins}]}
            imports.append(("import/ (new origins)", json.dumps(new).encode()))
        for path, body in imports:
            status, answer, seconds = call(port, key, "POST", path.split(" ")[0], body)
            outcome: int | str = status
            if status == 202:
                outcome, answer, seconds = finished(port, key, json.loads(answer)["id"], seconds)
            load = os.getloadavg()[0]
            print(f"{path}: {outcome}, {seconds:.1f} s, load {load:.1f}: {answer[:200]!r}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
