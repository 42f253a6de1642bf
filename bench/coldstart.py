"""Cold start and memory of gunicorn -w 3 on the allow-list already in ``$DATABASE_URL``.

    python -m bench.coldstart [--rounds 2] [--against DIR] [--preload-only] [--fresh] [--no-stored]

From launching gunicorn (``project.wsgi``, ``-c project/gunicorn_conf.py``) until every worker
has allowed ``https://h1.example.com`` (as ``bench.load fill`` stores it), with and without
``--preload``; then RSS and PSS of each worker (``/proc/<pid>/smaps_rollup``). ``REDIS_URL``
as in the environment. ``--against DIR``: a tree of another revision (``git archive REV | tar
-x -C DIR``), run in turn with this one (ratios, not absolute times: the machine is shared).
The demo's settings keep snapshot files in ``$CORSADMIN_VAR_DIR/snapshots`` (one directory for
the whole run, as a host keeps it between restarts): a start finds the file the last one wrote.
``--fresh`` deletes them before each start (a host's very first start: a new machine or deploy
directory; it installs the file the database holds, if any). ``--no-stored`` also deletes the
files the database holds (``corsadmin_storedsnapshot``) before each start: a database no host has
started on yet, a full load, then the file written. ``--settle S``: RSS and PSS read S seconds
after the cold start (default 0).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from bench import refresh

KNOWN = "https://h1.example.com"


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                values[name.lower()] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return values


def cold_start(src: Path, preload: bool, log_dir: Path, var_dir: Path, settle: float = 0.0) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        CACHE_KEY_PREFIX=f"coldstart-{secrets.token_hex(4)}",
        CORSADMIN_VAR_DIR=str(var_dir),
        DJANGO_DEBUG="",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        PYTHONUNBUFFERED="1",
    )
    extra = ("-c", "project/gunicorn_conf.py", *(("--preload",) if preload else ()))
    refresh.SRC = src
    name = f"{src.name}-{'preload' if preload else 'plain'}-{time.time():.0f}"
    server, result = refresh.start_server(name, env, log_dir, KNOWN, timeout=180, extra=extra)
    time.sleep(settle)
    result["memory"] = {str(pid): memory_mb(pid) for pid in sorted(server.pids)}
    refresh.stop_server(server)
    return result


def stored(drop: bool) -> list[int]:
    """The generations of the files the database holds (deleted first with ``drop``)."""
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        try:
            if drop:
                conn.execute("DELETE FROM corsadmin_storedsnapshot")
            rows = conn.execute("SELECT generation FROM corsadmin_storedsnapshot WHERE part = 0").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return sorted(row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", type=Path)
    parser.add_argument("--preload-only", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="no snapshot file at each start")
    parser.add_argument("--no-stored", action="store_true", help="no file in the database at each start")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait before reading memory")
    args = parser.parse_args()
    trees = [refresh.BASE] + ([args.against.resolve()] if args.against else [])
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp) / "var"
        var_dir.mkdir()
        static = refresh.BASE / "var" / "static"
        if static.exists():
            (var_dir / "static").symlink_to(static, target_is_directory=True)
        for k in range(args.rounds):
            for preload in (True,) if args.preload_only else (True, False):
                for src in trees if k % 2 == 0 else trees[::-1]:
                    if args.fresh:
                        shutil.rmtree(var_dir / "snapshots", ignore_errors=True)
                    files = sorted(p.name[-12:-4] for p in (var_dir / "snapshots").glob("snapshot-*.bin"))
                    in_database = stored(args.no_stored)
                    result = cold_start(src, preload, Path(tmp), var_dir, args.settle)
                    memory = result["memory"].values()
                    print(
                        f"round {k + 1} {'after ' if src == refresh.BASE else 'before'} "
                        f"{'--preload' if preload else 'no preload'}: {result['seconds']:.2f} s "
                        f"(per worker {sorted(result['per_worker'].values())}), "
                        f"RSS {sorted(m.get('rss', 0) for m in memory)} MB, "
                        f"PSS {sorted(m.get('pss', 0) for m in memory)} MB, load {result['load']}, "
                        f"snapshot files at launch: {files or 'none'}, "
                        f"in the database: {in_database or 'none'}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
