"""``make test``: the nox sessions (noxfile.py) in lanes side by side, one per core's worth of work.

- ``django61``: the whole suite on the newest Django, embedded (CPU-bound, the longest).
- ``services``: the services pass on PostgreSQL + Redis (serial; mostly waiting on real
  servers and on the services, so it leaves most of a core to the others).
- ``lint-django52``: ruff and mypy, then the oldest Django.

Each lane writes to ``var/test-logs/<lane>.log``; a lane's log is printed whole when it
ends, then a summary (each lane's wall time and status). The exit status is non-zero when
any lane failed. ``nox`` alone runs the same sessions one after the other.

Usage: ``python -m tests.lanes [path/to/nox]``
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

LANES = {
    "django61": ["django61"],
    "services": ["django61_services"],
    "lint-django52": ["lint", "django52"],
}
LOGS = Path("var/test-logs")


def main(argv: list[str]) -> int:
    nox = argv[1] if len(argv) > 1 else "nox"
    LOGS.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    running = {}
    for name, sessions in LANES.items():
        path = LOGS / f"{name}.log"
        log = path.open("w")
        process = subprocess.Popen([nox, "-s", *sessions], stdout=log, stderr=subprocess.STDOUT)
        running[name] = (process, log, path)
        print(f"lane {name}: nox -s {' '.join(sessions)}  (tail -f {path})", flush=True)
    results: list[tuple[str, int, float]] = []
    while running:
        time.sleep(0.5)
        for name, (process, log, path) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            took = time.monotonic() - began
            print(f"\n===== lane {name} ({took:.0f} s, exit {process.returncode}) =====", flush=True)
            sys.stdout.write(path.read_text(errors="replace"))
            sys.stdout.flush()
            results.append((name, process.returncode, took))
            del running[name]
    print("\n===== make test =====")
    for name, status, took in results:
        print(f"{name:15} {'ok' if status == 0 else f'FAILED (exit {status})':20} done at {took:4.0f} s")
    print(f"{'total':15} {'':20} {time.monotonic() - began:7.0f} s", flush=True)
    return 0 if all(status == 0 for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
