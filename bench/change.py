"""The cost of applying one change (an origin added, then that origin deleted) to tables as a
full load builds them (dictionaries) and to tables mapped from a snapshot file, in one process.

    python -m bench.change [--rounds 5]

On ``$DATABASE_URL``'s origins (``bench.load fill``); writes and deletes
``https://change-N.bench.example.com`` there. Each ``SnapshotBuilder.update()`` is timed (the
queries of what changed, the tables changed, the snapshot built).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.load import setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ["CORSADMIN_VAR_DIR"] = tempfile.mkdtemp()
    setup()
    from corsadmin.loader import SnapshotBuilder
    from corsadmin.models import AllowedOrigin

    loaded = SnapshotBuilder()
    loaded.load()
    mapped = SnapshotBuilder()
    mapped.load()
    assert mapped.save() is not None, "no snapshot file (SNAPSHOT_DIR)"
    times: dict[str, list[float]] = {"dict": [], "flat": []}
    for k in range(args.rounds):
        origin = f"https://change-{k}.bench.example.com"
        entry = AllowedOrigin.objects.create(origin=origin)
        for step in ("add", "delete"):
            if step == "delete":
                entry.delete()
            pairs = (("dict", loaded), ("flat", mapped))
            for name, builder in pairs if k % 2 == 0 else pairs[::-1]:
                started = time.perf_counter()
                snapshot = builder.update()
                times[name].append((time.perf_counter() - started) * 1000)
                assert snapshot is not None
                assert snapshot.decide(origin, "/x").allowed is (step == "add")
                assert snapshot.decide("https://h1.example.com", "/x").allowed
    for name, values in times.items():
        print(
            f"{name}: update median {statistics.median(values):.1f} ms "
            f"(range {min(values):.1f}-{max(values):.1f})"
        )


if __name__ == "__main__":
    main()
