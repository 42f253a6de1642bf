"""gunicorn settings for ``make run``: say where the site is only once it is listening."""

from __future__ import annotations

from typing import Any


def when_ready(server: Any) -> None:
    for listener in server.LISTENERS:
        address = str(listener)  # "http://127.0.0.1:8000" for TCP, "unix:/path" for a socket
        url = address if "://" in address else f"http://{address}"
        print(
            f"Serving on {url}/ (admin: /admin/, API: /api/cors/, demo: /demo/echo/, /demo/error/)",
            flush=True,
        )
