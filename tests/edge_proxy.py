"""Loopback HTTP servers a probe test starts: an edge in front of the site that rewrites its
answers' headers (a proxy adding a second ``Access-Control-Allow-Origin``, a CDN dropping
``Vary``), and a server answering every request with one fixed answer (a redirect, say).

Each counts the connections it accepted, so a test can tell that nothing was sent.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Headers = list[tuple[str, str]]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.accepted = 0

    def get_request(self) -> Any:
        self.accepted += 1
        return super().get_request()


class _Running:
    server: _Server

    def start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server(handler)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name=f"edge-{self.port}", daemon=True
        ).start()

    @property
    def accepted(self) -> int:
        return self.server.accepted

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EdgeProxy(_Running):
    """Forwards every request (method, path, headers but hop-by-hop ones, body) to ``upstream``
    (``host:port``) and answers with its answer, headers passed through ``rewrite``."""

    def __init__(self, upstream: str, rewrite: Callable[[Headers], Headers]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(upstream, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                connection.close()
                self.send_response_only(answer.status, answer.reason)
                for name, value in proxy.rewrite(
                    [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.rewrite = rewrite
        self.start(Handler)


class Fixed(_Running):
    """Answers every request with ``status`` and ``headers`` (and no body)."""

    def __init__(self, status: int, headers: Headers) -> None:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.send_response_only(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.start(Handler)
