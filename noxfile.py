"""The Django matrix. ``make test`` (and so ``.ci/run``) runs the default sessions, in lanes
side by side (tests/lanes.py); ``nox`` runs them one after the other.

Each test runs once, plus again where a second run can tell something (DEVELOPERS.md,
"Markers"; tests/conftest.py marks by module):

- ``lint`` (first): ``ruff check``, ``ruff format --check`` and ``mypy corsadmin`` (django-stubs
  and djangorestframework-stubs; the configuration is in pyproject.toml), on Python 3.11.
- ``django61``: Django 6.1 on Python 3.13, the newest pair. The whole suite on the
  embedded defaults (SQLite, local-memory cache; the browser tests included), but the
  package test and the API fuzzers (``fuzz``), which run once in ``django52``.
- ``django61_services``: when ``DATABASE_URL`` or ``REDIS_URL`` is set (else skipped), on
  those services, serially: the ``services`` tests (real servers: production, faults,
  processes) and the ``backends`` tests (the outcome depends on the database or the cache).
- ``django52``: Django 5.2 LTS on Python 3.11, the oldest pair (what ``make run`` gets
  from a plain Python 3.11): the ``django_surface`` tests (admin, API, migrations,
  middleware, checks, management commands, testutils) on the embedded defaults, the
  package test (it builds the wheel and installs it into Django 5.2 and 6.1 sites itself)
  and the API fuzzers (schemathesis, the stateful test).
- ``django60``: Django 6.0 on Python 3.12, on demand (``nox -s django60``): the same.
- ``dropin_full``: on demand, the parity table (tests/test_dropin.py) over the full
  product of requests instead of its covering design.

Every pass runs in random order (pytest-randomly; the seed is printed at the top of its
output: ``-p randomly --randomly-seed=N`` replays it, ``-p no:randomly`` turns it off), with
the transactional tests where the shuffle put them, not last (``--mix-db-tests``), and ends
with the 25 slowest tests. ``HYPOTHESIS_PROFILE=long`` runs the property tests deeper.

A missing interpreter is an error, never a skip. Interpreters are looked up on PATH and
in pyenv (``$(pyenv root)/versions/X.Y.*``); uv creates the venvs and never downloads a
Python. ``nox -s django61 -- tests/test_dropin.py`` passes arguments to pytest (and then
runs only the embedded pass).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "django61", "django61_services", "django52"]

EMBEDDED = {"DATABASE_URL": None, "REDIS_URL": None}  # None: removed from the environment

# The suite starts Python processes by the hundred (servers and their workers, command-line runs,
# the package test's sites), each importing Django afresh. uv installs without compiling, so with
# PYTHONDONTWRITEBYTECODE set (as on the CI machine) every one of them compiled Django again:
# 2.2 s of CPU per start instead of 0.7 s (Python 3.13, measured). The sessions write bytecode.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


PYTEST = ("python", "-m", "pytest", "-p", "randomly", "--mix-db-tests", "--durations=25")


def _workers() -> list[str]:
    """``CORSADMIN_TEST_WORKERS=N`` (or ``auto``) runs the embedded passes with pytest-xdist.

    They allow it; off by default (measured: DEVELOPERS.md). The services pass always runs
    serially: it measures propagation between real server processes.
    """
    workers = os.environ.get("CORSADMIN_TEST_WORKERS", "")
    return ["-n", workers] if workers and workers != "0" else []


def _add_pyenv_interpreters(*versions: str) -> None:
    """Put pyenv's pythonX.Y on PATH (before its shims, which refuse inactive versions)."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = []
    for version in versions:
        found += sorted(glob.glob(f"{root}/versions/{version}.*/bin"), reverse=True)[:1]
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


_add_pyenv_interpreters("3.11", "3.12", "3.13")


def _install(session: nox.Session, django: str) -> None:
    session.install("-r", "requirements-test.txt")
    session.install(f"Django=={django}")  # the cell's Django, whatever the markers picked
    session.run(
        "python", "-c", f"import django; assert django.get_version() == {django!r}, django.get_version()"
    )


def _services_set() -> bool:
    return bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("-r", "requirements-test.txt")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "corsadmin", env=EMBEDDED)


@nox.session(python="3.13")
def django61(session: nox.Session) -> None:
    _install(session, "6.1.3")
    if session.posargs:
        session.run(*PYTEST, *session.posargs, env=EMBEDDED)
        return
    session.run(*PYTEST, "-m", "not services and not package and not fuzz", *_workers(), env=EMBEDDED)


@nox.session(python="3.13")
def django61_services(session: nox.Session) -> None:
    if not _services_set():
        session.skip("DATABASE_URL and REDIS_URL are not set: no services pass (.ci/run sets them)")
    _install(session, "6.1.3")
    session.run(*PYTEST, "-m", "services or backends", *session.posargs)


@nox.session(python="3.11")
def django52(session: nox.Session) -> None:
    _install(session, "5.2.19")
    if session.posargs:
        session.run(*PYTEST, *session.posargs, env=EMBEDDED)
        return
    # The package test (it installs both Django pairs itself) and the API fuzzers: here, in the
    # lane that ends first.
    session.run(
        *PYTEST, "-m", "(django_surface or package or fuzz) and not services", *_workers(), env=EMBEDDED
    )


@nox.session(python="3.12", default=False)
def django60(session: nox.Session) -> None:
    _install(session, "6.0.10")
    args = session.posargs or ["-m", "django_surface and not services and not package"]
    session.run(*PYTEST, *args, env=EMBEDDED)


@nox.session(python="3.13", default=False)
def dropin_full(session: nox.Session) -> None:
    _install(session, "6.1.3")
    session.run(*PYTEST, "tests/test_dropin.py", "--dropin-full", *session.posargs, env=EMBEDDED)
