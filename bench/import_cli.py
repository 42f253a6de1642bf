"""Time ``manage.py cors import FILE`` (merge and ``--replace``) of N origins (issue 23).

    python bench/import_cli.py                      # 100,000 origins, SQLite (a temporary var dir)
    python bench/import_cli.py --database-url postgres://root@127.0.0.1:5432/h_imports
    python bench/import_cli.py 20000 --profile      # and a cProfile of each import, in-process

N origins ``https://h{i}.example.com`` go into the ``default`` policy with ``bulk_create``;
``cors export`` writes the site's own document. Then, each timed from the process's start to
its exit (Django's start included, ~0.5 s): (a) ``cors import`` of that document unchanged,
merge and ``--replace --yes``; (b) the same document after every origin was deleted: N new
origins, merge and ``--replace``. ``--profile`` runs each import once more in one process
under cProfile and prints the 25 costliest functions (cumulative). The database given is
flushed of its policies and origins first: give one of your own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

SETUP = """
from corsadmin.models import AllowedOrigin, Policy
from django.contrib.auth import get_user_model
get_user_model().objects.filter(username="bench").delete()
get_user_model().objects.create_superuser("bench", "", "bench-password-123")
Policy.objects.exclude(name="default").delete()
AllowedOrigin.objects.all().delete()
policy = Policy.objects.get(name="default")
AllowedOrigin.objects.bulk_create(
    [AllowedOrigin(policy=policy, origin=f"https://h{i}.example.com", note="bench") for i in range(%d)],
    batch_size=2000,
)
"""
EMPTY = "from corsadmin.models import AllowedOrigin; AllowedOrigin.objects.all().delete()"
PROFILE = """
import cProfile, json, pstats
from corsadmin import documents
from corsadmin.models import AllowedOrigin
from django.contrib.auth import get_user_model
user = get_user_model().objects.get(username="bench")
document = json.load(open(%r))
for label, replace, empty in (("unchanged merge", False, False), ("new, merge", False, True)):
    if empty:
        AllowedOrigin.objects.all().delete()
    profile = cProfile.Profile()
    profile.enable()
    result = documents.import_document(document, replace=replace, user=user)
    profile.disable()
    print("=== cProfile:", label, result.summary())
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origins", type=int, nargs="?", default=100_000)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    parser.add_argument("--runs", type=int, default=1, help="times each import is run")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    var = Path(tempfile.mkdtemp(prefix="corsadmin-import-cli-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CORSADMIN_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="project.settings")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    document = var / "export.json"

    def manage(*argv: str, quiet: bool = True) -> float:
        started = time.monotonic()
        done = subprocess.run([python, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode:
            sys.exit(f"manage.py {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        if not quiet:
            print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", flush=True)
        return seconds

    try:
        manage("migrate", "-v0")
        manage("shell", "-c", SETUP % args.origins)
        manage("cors", "export", str(document))
        backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        size = document.stat().st_size
        print(f"{args.origins:,} origins, {backend}, {size:,} bytes, load {os.getloadavg()[0]:.1f}")
        cases = [("(a) unchanged", "merge", False), ("(a) unchanged", "replace", False)]
        cases += [("(b) new", "merge", True), ("(b) new", "replace", True)]
        for _run in range(args.runs):
            for what, mode, empty in cases:
                if empty:
                    manage("shell", "-c", EMPTY)
                argv = ["cors", "import", str(document), "--user", "bench"]
                if mode == "replace":
                    argv += ["--replace", "--yes"]
                seconds = manage(*argv)
                print(f"{what:<14} {mode:<8} {seconds:6.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)
        if args.profile:
            done = subprocess.run(
                [python, "manage.py", "shell", "-c", PROFILE % str(document)], cwd=ROOT, env=env, text=True
            )
            if done.returncode:
                sys.exit("the profile failed")
    finally:
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
