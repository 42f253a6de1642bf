"""A loopback TCP proxy a test controls, to take a service "down" without touching it.

Servers under test are pointed at the proxy's port instead of the service's.
``down()`` cuts every open connection and answers new ones by closing them at
once (the client sees the server hang up, as when PostgreSQL or Redis stops);
``hang()`` accepts connections and reads what clients send but never answers nor
forwards (a service that hangs); ``up()`` forwards again. The real service is never
stopped, so other tests and other users of it are not disturbed.
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._up = True
        self._hanging = False
        self._held: list[socket.socket] = []
        self._closed = False
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<Proxy 127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]} {state}>"

    @property
    def is_up(self) -> bool:
        return self._up

    def down(self) -> None:
        """Cut every connection and refuse new ones until ``up()``."""
        with self._lock:
            self._up = False
            sockets, self._open = self._open, set()
        for sock in sockets:
            _abort(sock)

    def hang(self) -> None:
        """Answer nothing: swallow what clients send on open connections, hold new ones."""
        self._hanging = True

    def up(self) -> None:
        with self._lock:
            self._up, self._hanging = True, False
            held, self._held = self._held, []
        for sock in held:
            _abort(sock)

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                self.refused += 1
                _abort(client)
                continue
            if self._hanging:
                with self._lock:
                    self._held.append(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _abort(client)
                continue
            with self._lock:
                if not self._up:
                    _abort(client)
                    _abort(upstream)
                    continue
                self._open.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._hanging:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _abort(source)
            _abort(sink)


def _abort(sock: socket.socket) -> None:
    """Close at once (waking any thread blocked on it) with a reset, as a dying server's would."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
