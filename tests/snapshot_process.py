"""A process of the demo site on its own database (``DATABASE_URL``) with snapshot files in
``$CORSADMIN_VAR_DIR/snapshots``, for test_snapshot_file.py.

    python -m tests.snapshot_process fill N            # N origins https://h{i}.example.com
    python -m tests.snapshot_process revoke ORIGIN...  # delete (a tombstone)
    python -m tests.snapshot_process disable ORIGIN... # disable (a row stamped later)
    python -m tests.snapshot_process add ORIGIN...
    python -m tests.snapshot_process prune             # the change log forgets everything so far
    python -m tests.snapshot_process load ORIGIN...    # first snapshot as a new process takes it
    python -m tests.snapshot_process write K           # full load, then write its file K times

``load`` runs the refresher's first cycle (a file read, or a full load and the file written) and
prints JSON: how the snapshot was made, and for each ORIGIN whether it allows it.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import F

    from corsadmin import snapshot_file
    from corsadmin.loader import SnapshotBuilder
    from corsadmin.models import AllowedOrigin, Generation

    command, args = sys.argv[1], sys.argv[2:]
    if command == "fill":
        call_command("migrate", verbosity=0)
        origins = (AllowedOrigin(origin=f"https://h{i}.example.com") for i in range(int(args[0])))
        AllowedOrigin.objects.bulk_create(origins, batch_size=1000)
    elif command == "revoke":
        AllowedOrigin.objects.filter(origin__in=args).delete()
    elif command == "disable":
        for entry in AllowedOrigin.objects.filter(origin__in=args):
            entry.enabled = False
            entry.save()
    elif command == "add":
        for origin in args:
            AllowedOrigin.objects.create(origin=origin)
    elif command == "prune":
        Generation.objects.filter(pk=1).update(pruned=F("value"))
    elif command == "load":
        from corsadmin.refresh import holder

        holder.refresh()  # one cycle of the refresher, as its thread runs it: the first read
        stats, snapshot = holder.stats(), holder.peek()
        print(
            json.dumps(
                {
                    "file_loads": stats["file_loads"],
                    "full_loads": stats["full_loads"],
                    "generation": snapshot.generation,
                    "allowed": {origin: snapshot.decide(origin, "/").allowed for origin in args},
                }
            )
        )
    elif command == "write":
        builder = SnapshotBuilder()
        builder.load()
        state = snapshot_file.State(
            builder.generation or 0, builder._policies, builder._tables, builder._texts, builder._scoped, {}
        )
        for _ in range(int(args[0])):
            assert snapshot_file.write(state, builder._epoch, "default") is not None
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
