"""A process that counts refusals (and usage) and writes them into the database of
``DATABASE_URL``, as a gunicorn worker does. Used by test_telemetry_processes.py.

    python -m tests.telemetry_process flood START COUNT EVERY
        records COUNT distinct refused origins (o{START}...), flushing every EVERY of them
    python -m tests.telemetry_process fork ENTRY_ID
        counts 3 refusals and 3 uses of ENTRY_ID, forks; the child counts 2 more of each
        and flushes, then the parent flushes: what the parent counted before the fork
        must be written once
    python -m tests.telemetry_process exit ENTRY_ID
        counts 4 refusals and 4 uses of ENTRY_ID with background writers whose interval
        is an hour, and exits: only the exit flush can write them (one writer thread
        serves both)
"""

from __future__ import annotations

import json
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def configure(**changes: object) -> None:
    from django.conf import settings
    from django.test import override_settings

    override_settings(CORSADMIN={**settings.CORSADMIN, **changes}).enable()  # for the process's life


def flood(start: int, count: int, every: int) -> None:
    from corsadmin.telemetry import recorder

    written = 0
    for n in range(start, start + count):
        recorder.record(f"https://o{n}.flood.example", "/api/x")
        if (n - start + 1) % every == 0:
            written += recorder.flush()
    written += recorder.flush()
    print(json.dumps({"written": written}))


def fork(entry_id: int) -> None:
    from corsadmin import usage
    from corsadmin.telemetry import recorder

    def count(times: int) -> None:
        for _ in range(times):
            recorder.record("https://forked.example", "/api/x")
            usage.allowed("default", entry_id)

    count(3)
    pid = os.fork()
    if pid == 0:
        count(2)
        recorder.flush()
        usage.flush()
        os._exit(0)  # the test's process: no exit hooks of the parent's copy
    _, status = os.waitpid(pid, 0)
    recorder.flush()
    usage.flush()
    print(json.dumps({"child_status": status}))


def exit_(entry_id: int) -> None:
    from corsadmin import usage
    from corsadmin.telemetry import recorder

    configure(
        TELEMETRY_FLUSH="background", USAGE_FLUSH="background", TELEMETRY_INTERVAL=3600, USAGE_INTERVAL=3600
    )
    for _ in range(4):
        recorder.record("https://leaving.example", "/api/x")
        usage.allowed("default", entry_id)
    writers = {"corsadmin-flusher", "corsadmin-usage", "corsadmin-telemetry", "corsadmin-metrics"}
    threads = sum(thread.name in writers for thread in threading.enumerate())
    print(json.dumps({"pending": len(recorder.pending()), "writer_threads": threads}))


def main() -> None:
    import django

    django.setup()
    mode, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    configure(REFUSED_RETENTION_DAYS=0)
    {"flood": flood, "fork": fork, "exit": exit_}[mode](*args)


if __name__ == "__main__":
    main()
