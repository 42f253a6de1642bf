"""Time the full snapshot load (``SnapshotBuilder().load()``) in process, on PostgreSQL.

    python -m bench.load fill 1000000                  # N origins into $DATABASE_URL's database
    python -m bench.load time [--profile 25]           # one load here: wall, CPU, RSS, top of cProfile
    python -m bench.load compare REV [--rounds 4]      # this tree vs REV (git archive), alternating
    python -m bench.load file [--rounds 3]             # full load + snapshot file, then starts from it

``DATABASE_URL`` names a database of your own (migrated here if needed); ``fill`` replaces its
origins with N canonical ones (``https://h{i}.example.com`` in ``default``, as ``bench.refresh``
fills), 1 % of them wildcards (``https://*.w{i}.example.com``), in one ``INSERT ... SELECT``.
``compare`` runs each load in a fresh process (``time`` on the same database), the two trees
taking turns, and prints each run and the median ratio (ratios, not absolute times: the
machine is shared). ``file``: in a temporary ``CORSADMIN_VAR_DIR``, a fresh process times a full
load and the writing of its snapshot file (``SnapshotBuilder.save``), then R fresh processes each
time their first snapshot from that file (``SnapshotBuilder.update``), alternating with R full
loads: wall, CPU, RSS added.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("REDIS_URL", "")
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()


def fill(n: int) -> None:
    setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    columns = (
        "origin, policy_id, version, enabled, csrf_trusted, created_at, updated_at, note, effect, "
        "cors, websocket"
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM corsadmin_allowedorigin")
        cursor.execute("DELETE FROM corsadmin_storedsnapshot")  # rows replaced behind the change log
        cursor.execute(
            f"INSERT INTO corsadmin_allowedorigin ({columns}) "
            "SELECT CASE WHEN i %% 100 = 7 THEN 'https://*.w' || i || '.example.com' "
            "ELSE 'https://h' || i || '.example.com' END, "
            "(SELECT id FROM corsadmin_policy WHERE name = 'default'), "
            "0, true, false, now(), now(), '', 'allow', true, false "
            "FROM generate_series(0, %s) AS i",
            [n - 1],
        )
        cursor.execute("SELECT count(*) FROM corsadmin_allowedorigin")
        print("origins:", cursor.fetchone()[0])
    connection.close()
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE corsadmin_allowedorigin")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_load(profile: int) -> dict:
    setup()
    from corsadmin.loader import SnapshotBuilder
    from corsadmin.origins import split_request_origin  # noqa: F401  (imported before the clock)

    builder = SnapshotBuilder()
    before = rss_mb()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    snapshot = builder.load()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    allowed = snapshot.decide("https://h1.example.com", "/x").allowed  # type: ignore[attr-defined]
    return {"wall": wall, "cpu": cpu, "rss_added_mb": rss_mb() - before, "allowed": bool(allowed)}


def time_file(phase: str) -> dict:
    """One process: ``save`` (a full load, then its file written and read back) or ``first``
    (the first snapshot, from the file)."""
    setup()
    from corsadmin.loader import SnapshotBuilder

    builder = SnapshotBuilder()
    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    snapshot = builder.load() if phase == "save" else builder.update()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"wall": wall, "cpu": cpu, "rss_added_mb": rss_mb() - before}
    result.update(file_loads=builder.file_loads, full_loads=builder.full_loads)
    if phase == "save":
        del snapshot
        started = time.perf_counter()
        snapshot = builder.save()
        result["save_wall"] = time.perf_counter() - started
        result["rss_added_after_save_mb"] = rss_mb() - before
    assert snapshot is not None
    result["allowed"] = bool(snapshot.decide("https://h1.example.com", "/x").allowed)
    return result


def file_rounds(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CORSADMIN_VAR_DIR": tmp, "PYTHONPATH": str(BASE)}

        def run(*args: str) -> dict:
            done = subprocess.run(
                [sys.executable, "-m", "bench.load", *args, "--json"],
                cwd=BASE,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(done.stdout.strip().splitlines()[-1])

        print("full load + file:", run("file-phase", "save"), flush=True)
        for k in range(rounds):
            print(f"round {k + 1} from the file:", run("file-phase", "first"), flush=True)
            print(f"round {k + 1} full load:", run("time"), flush=True)


def run_once(src: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "time", "--json"],
        cwd=src,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(rev: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", rev], cwd=BASE, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        (old / "bench" / "load.py").write_text((BASE / "bench" / "load.py").read_text())
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for k in range(rounds):
            for name, src in (("before", old), ("after", BASE))[:: 1 if k % 2 == 0 else -1]:
                result = run_once(src)
                runs[name].append(result)
                print(
                    f"round {k + 1} {name:6}: wall {result['wall']:.2f} s, CPU {result['cpu']:.2f} s, "
                    f"RSS +{result['rss_added_mb']:.0f} MB, allowed {result['allowed']}",
                    flush=True,
                )
        for key in ("wall", "cpu", "rss_added_mb"):
            before = [r[key] for r in runs["before"]]
            after = [r[key] for r in runs["after"]]
            ratios = [a / b for a, b in zip(after, before, strict=True)]
            print(
                f"{key}: before {min(before):.2f}-{max(before):.2f}, "
                f"after {min(after):.2f}-{max(after):.2f}, "
                f"after/before median {statistics.median(ratios):.2f} "
                f"(range {min(ratios):.2f}-{max(ratios):.2f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fill").add_argument("n", type=int)
    timing = sub.add_parser("time")
    timing.add_argument("--profile", type=int, default=0, metavar="LINES")
    timing.add_argument("--json", action="store_true")
    phase = sub.add_parser("file-phase")
    phase.add_argument("phase", choices=("save", "first"))
    phase.add_argument("--json", action="store_true")
    sub.add_parser("file").add_argument("--rounds", type=int, default=3)
    comparing = sub.add_parser("compare")
    comparing.add_argument("rev")
    comparing.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.n)
    elif args.command == "time":
        result = time_load(args.profile)
        print(json.dumps(result) if args.json else result)
    elif args.command == "file-phase":
        print(json.dumps(time_file(args.phase)))
    elif args.command == "file":
        file_rounds(args.rounds)
    else:
        compare(args.rev, args.rounds)


if __name__ == "__main__":
    main()
