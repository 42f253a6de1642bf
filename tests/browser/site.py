"""The site for real: a temporary SQLite database, ``manage.py`` and ``gunicorn project.wsgi``."""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
REFRESH_INTERVAL = 1.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def raw_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str]]:
    """A plain HTTP GET (no browser): status and headers, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items())


class Site:
    """One running copy of the host site under gunicorn, with its own database and var/ dir."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.tmp = tmp
        self.workers = workers
        self.port = free_port()
        self.origin = f"http://{HOST}:{self.port}"
        self.access_log = tmp / "access.log"
        self.error_log = tmp / "gunicorn.log"
        self.username = "browser-admin"
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen | None = None
        self.orm_worker: subprocess.Popen | None = None
        self._worker_ready = False
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="project.settings",
            DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
            CORSADMIN_VAR_DIR=str(tmp),
            CORSADMIN_REFRESH_INTERVAL=str(REFRESH_INTERVAL),
            DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
            CACHE_KEY_PREFIX=f"corsadmin-browser-{secrets.token_hex(4)}",
            PYTHONUNBUFFERED="1",
        )
        self.env = env

    def url(self, path: str) -> str:
        return self.origin + path

    # -- manage.py -------------------------------------------------------------

    def _spawn(self, args: tuple[str, ...]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _finish(process: subprocess.Popen, args: tuple[str, ...], timeout: float = 120) -> str:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(f"manage.py {args[0]} took more than {timeout} s") from None
        if process.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args[:2])} failed ({process.returncode}):\n{stdout}\n{stderr}"
            )
        return stdout

    def manage(self, *args: str, timeout: float = 120) -> str:
        return self._finish(self._spawn(args), args, timeout)

    def orm(self, code: str, timeout: float = 60) -> str:
        """Run Python (``AllowedOrigin`` and ``Policy`` imported) against the site's database in a
        process of its own, as ``manage.py shell -c`` would; returns what it printed."""
        worker = self._worker()
        if not self._worker_ready:
            self._reply(worker, timeout)
            self._worker_ready = True
        worker.stdin.write(json.dumps({"code": code}) + "\n")
        worker.stdin.flush()
        return self._reply(worker, timeout, code)

    def _worker(self) -> subprocess.Popen:
        if self.orm_worker is None or self.orm_worker.poll() is not None:
            self._worker_ready = False
            self.orm_worker = subprocess.Popen(
                [sys.executable, "-m", "tests.browser.orm_worker"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self.orm_worker

    @staticmethod
    def _reply(worker: subprocess.Popen, timeout: float, code: str = "") -> str:
        ready, _, _ = select.select([worker.stdout], [], [], timeout)
        line = worker.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the ORM process gave no answer within {timeout} s (exit {worker.poll()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(f"ORM code failed:\n{code}\n{reply['output']}")
        return reply["output"]

    # -- gunicorn --------------------------------------------------------------

    def start(self, setup_code: str = "") -> None:
        # collectstatic (WhiteNoise's manifest, as in production) needs no database: run both at once.
        # The API's static files (Swagger UI, browsable API) are left out: no browser test opens them,
        # and compressing them would triple the start-up time.
        steps = [
            ("migrate", "--noinput", "--verbosity", "0"),
            (
                "collectstatic",
                "--noinput",
                "--verbosity",
                "0",
                "-i",
                "drf_spectacular_sidecar",
                "-i",
                "rest_framework",
            ),
        ]
        processes = [self._spawn(args) for args in steps]
        self._worker()  # let the ORM process start up meanwhile
        try:
            for process, args in zip(processes, steps, strict=False):
                self._finish(process, args)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        self.orm(
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_superuser({self.username!r}, '', {self.password!r})\n"
            + setup_code
        )
        log = open(self.error_log, "ab")  # noqa: SIM115  (the server's stderr while it runs)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "project.wsgi",
                "--workers",
                str(self.workers),
                "--bind",
                f"{HOST}:{self.port}",
                "--access-logfile",
                str(self.access_log),
                "--timeout",
                "30",
                "--graceful-timeout",
                "2",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited ({self.process.returncode}):\n{self.log_text()}")
            try:
                status, _ = raw_get(self.url("/demo/echo/?ready"), timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gunicorn did not answer within 30 s:\n{self.log_text()}")

    def stop(self) -> None:
        worker, self.orm_worker = self.orm_worker, None
        if worker is not None and worker.poll() is None:
            worker.stdin.close()  # it ends at end of input
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # the arbiter stops its workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # its own session: the arbiter and its workers only
            process.wait(timeout=5)

    def log_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def requests_seen(self, marker: str, expect: int = 1, timeout: float = 5) -> list[str]:
        """Access-log lines of requests whose URL contains ``marker``, in order.

        gunicorn writes a line once the response is sent: wait (up to ``timeout``) for ``expect`` lines.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.access_log.read_text(errors="replace") if self.access_log.exists() else ""
            lines = [line for line in text.splitlines() if marker in line]
            if len(lines) >= expect or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
