"""A tiny front-end on another origin: a static page whose JavaScript calls the site with fetch()."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .site import HOST

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>front-end</title></head>
<body>
<h1>A front-end on another origin</h1>
<script>
// Calls the site and reports what the page itself may see.
async function callSite(url, init, readHeaders) {
  try {
    const response = await fetch(url, Object.assign({cache: "no-store"}, init || {}));
    const text = await response.text();
    let body = text;
    try { body = JSON.parse(text); } catch (e) {}
    const headers = {};
    for (const name of readHeaders || []) headers[name] = response.headers.get(name);
    return {ok: response.ok, status: response.status, type: response.type, body: body,
            headers: headers, headerNames: Array.from(response.headers.keys()), error: null};
  } catch (e) {
    return {ok: false, status: null, type: null, body: null, headers: {}, headerNames: [],
            error: e.name + ": " + e.message};
  }
}
window.callSite = callSite;
</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class FrontEnd:
    """Serves the page on http://127.0.0.1:<own port>/: each instance is a distinct origin."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer((HOST, 0), _Handler)
        self.server.daemon_threads = True
        self.origin = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
