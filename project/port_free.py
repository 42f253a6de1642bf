"""``python -m project.port_free HOST PORT``: exit 1 with one line when the port is taken."""

from __future__ import annotations

import socket
import sys


def main(host: str, port: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            print(
                f"Cannot serve on {host}:{port}: {exc.strerror or exc}. "
                f"Choose another port: make run PORT={int(port) + 1}",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
