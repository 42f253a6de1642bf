"""Run django-cors-headers' own test suite with corsadmin's middleware in its place.

    CORSHEADERS_CHECKOUT=/path/to/django-cors-headers make corsheaders-suite
    python tests/corsheaders_suite.py /path/to/django-cors-headers [--ref 4.9.0] [pytest args]

The checkout is a directory holding django-cors-headers' ``tests/`` (a work tree), or a git
repository (bare or not) from which ``--ref``'s ``tests/`` is taken. Nothing is fetched
from the network; nothing of it is copied into this repository. Its tests run in a
temporary directory, in its own settings (``tests.settings``: no admin, SQLite), with
``corsheaders.middleware.CorsMiddleware`` replaced by ``corsadmin.middleware.CorsMiddleware``
in ``MIDDLEWARE`` and ``corsadmin`` (with the auth and contenttypes apps its models need)
installed. ``--control`` runs the same tests with django-cors-headers' own middleware.
Not part of ``make test``; the README ("Differences from django-cors-headers") lists
the tests expected to fail and why.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = """
from tests.settings import *  # noqa: F403

CONTROL = {control}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", *INSTALLED_APPS]
if not CONTROL:
    INSTALLED_APPS.append("corsadmin")
    MIDDLEWARE = [m.replace("corsheaders.middleware.", "corsadmin.middleware.") for m in MIDDLEWARE]
    # Requests refresh inline (tests run in a transaction other threads cannot see); no writer threads.
    CORSADMIN = {{
        "REFRESH": "inline",
        "TELEMETRY_FLUSH": "manual",
        "USAGE_FLUSH": "manual",
        "METRICS_FLUSH": "manual",
    }}
"""

# The tests of django-cors-headers 4.9.0 expected to fail, each a difference the README lists.
# Both are one mode difference: with no CORS_* origin setting (and no check_request_enabled
# receiver) there is no settings policy, and the migration's `default`, which allows nothing,
# covers nothing (django-cors-headers covers CORS_URLS_REGEX, `^.*$` by default, whatever it
# allows).
_NO_ORIGIN_SETTING = "no CORS_* origin setting: no settings policy, and the empty `default` covers nothing"
EXPECTED_FAILURES = {
    "tests/test_middleware.py::CorsMiddlewareTests::test_get_origin_vary_by_default": (
        f"{_NO_ORIGIN_SETTING}, so no `Vary: origin`"
    ),
    "tests/test_middleware.py::CorsMiddlewareTests::test_options_empty_request_method": (
        f"{_NO_ORIGIN_SETTING}, so the preflight goes to the view (405 from its `View`)"
    ),
}


def their_tests(checkout: Path, ref: str, into: Path) -> None:
    """Copy django-cors-headers' ``tests/`` into ``into``: from the work tree, or ``ref``."""
    if (checkout / "tests" / "settings.py").is_file() and not ref:
        subprocess.run(["cp", "-r", str(checkout / "tests"), str(into)], check=True)
        return
    archive = subprocess.run(
        ["git", "--git-dir", str(_git_dir(checkout)), "archive", ref or "HEAD", "tests"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _git_dir(checkout: Path) -> Path:
    return checkout / ".git" if (checkout / ".git").exists() else checkout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, nargs="?", default=os.environ.get("CORSHEADERS_CHECKOUT"))
    parser.add_argument("--ref", default=os.environ.get("CORSHEADERS_REF", "4.9.0"))
    parser.add_argument("--control", action="store_true", help="django-cors-headers' own middleware")
    options, pytest_args = parser.parse_known_args(argv)
    if options.checkout is None:
        print("Give the checkout of django-cors-headers (CORSHEADERS_CHECKOUT): skipped.")
        return 0
    with tempfile.TemporaryDirectory(prefix="corsheaders-suite-") as tmp:
        work = Path(tmp)
        their_tests(Path(options.checkout), options.ref, work)
        (work / "corsadmin_suite_settings.py").write_text(SETTINGS.format(control=options.control))
        (work / "corsadmin").symlink_to(REPO / "corsadmin")
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env["DJANGO_SETTINGS_MODULE"] = "corsadmin_suite_settings"
        command = [sys.executable, "-m", "pytest", "tests", "-p", "no:randomly", "-p", "no:cacheprovider"]
        code = subprocess.run([*command, "-q", "-rf", *pytest_args], cwd=work, env=env).returncode
    if not options.control:
        print("Expected to fail (README, Differences from django-cors-headers):")
        for test, why in EXPECTED_FAILURES.items():
            print(f"  {test}: {why}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
