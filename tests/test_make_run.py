"""`make run`: a taken port is one clear line; "Serving on" only once gunicorn listens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_taken_port_is_one_clear_line():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "project.port_free", "127.0.0.1", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"Cannot serve on 127.0.0.1:{port}: Address already in use. "
        f"Choose another port: make run PORT={port + 1}\n"
    )


def test_a_free_port_passes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "project.port_free", "127.0.0.1", str(port)], cwd=ROOT, timeout=30, check=False
    )
    assert result.returncode == 0


def test_serving_on_is_printed_once_listening(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CORSADMIN_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "project.wsgi",
            "--config",
            "python:project.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line.startswith("Serving on"):
            line = server.stdout.readline()
        assert line == (
            f"Serving on http://127.0.0.1:{port}/ "
            "(admin: /admin/, API: /api/cors/, demo: /demo/echo/, /demo/error/)\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # already listening when it says so
    finally:
        server.terminate()
        server.wait(timeout=30)
