"""gunicorn settings for ``make run``: say where the site is only once it is listening; with
``--preload``, load the CORS allow-list once in the master, before the workers are forked."""

from __future__ import annotations

from typing import Any


def when_ready(server: Any) -> None:
    if server.cfg.preload_app:  # gunicorn --preload: load the allow-list once, before the fork
        from corsadmin.refresh import holder

        holder.preload()
    for listener in server.LISTENERS:
        address = str(listener)  # "http://127.0.0.1:8000" for TCP, "unix:/path" for a socket
        url = address if "://" in address else f"http://{address}"
        print(
            f"Serving on {url}/ (admin: /admin/, API: /api/cors/, demo: /demo/echo/, /demo/error/)",
            flush=True,
        )
