"""Fixtures shared by the whole suite: a fresh snapshot, throttles and telemetry per test,
the API's users and clients, the production tests' deployment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient

from corsadmin import bus, conf, refusals
from corsadmin.api.auth_failures import failures
from corsadmin.api.throttles import CorsAdminThrottle
from corsadmin.refresh import holder
from corsadmin.telemetry import recorder

from .api_fixtures import MODELS, make_user, token_client
from .browser.chromium import running_chromium
from .e2e import deployment, report_line, start_server  # noqa: F401  (fixtures of the production tests)


def forget_shared_generation():
    """With REDIS_URL set the cache outlives each test's rolled-back database: drop its stamp."""
    try:
        shared = bus.shared_bus()
        if shared is not None:
            shared.forget()
    except Exception:  # noqa: BLE001, S110  (a cache that does not answer has no stamp to drop)
        pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mix-db-tests",
        action="store_true",
        help="run transactional tests where they fall in the (random) order, not all last",
    )
    parser.addoption(
        "--dropin-full",
        action="store_true",
        help="test_dropin.py: every request of the full product under every setting (nox -s dropin_full)",
    )


@pytest.fixture(autouse=True)
def fresh_snapshot():
    """Each test starts with no snapshot, so its first request loads the test's data."""
    holder.reset()
    forget_shared_generation()
    yield
    holder.reset()


@pytest.fixture(autouse=True)
def fresh_throttles():
    """The API's throttle counts live in the cache, which outlives each test, and user ids
    repeat once a test's rows are rolled back: an earlier test's requests must not count
    against this one's. The local-memory cache only (a Redis database may also hold a
    running deployment's keys; counts there last a minute)."""
    cache = caches[conf.cache_alias()]
    if isinstance(cache, LocMemCache):
        cache.clear()
    failures.clear()  # failed token authentications, counted in memory
    CorsAdminThrottle.breaker.ok()  # and no back-off left by a test whose cache failed


@pytest.fixture(autouse=True)
def manual_telemetry():
    """Each test starts and ends with no refused-origin telemetry in memory (tests/settings.py
    flushes it by hand: no background writer), nor refusals waiting for usage."""
    recorder._take()
    refusals.clear()
    yield
    recorder._take()
    refusals.clear()


@pytest.fixture
def long_interval(settings):
    """Only invalidation, not the interval, can make a change visible."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 3600}


# --- where each test runs (noxfile.py; DEVELOPERS.md, "Markers") ----------------------
#
# Marked by module, so a test added to one of these modules is marked with it. A test in
# another module can carry the marker itself (``pytestmark`` or ``@pytest.mark.backends``).

# The outcome depends on the database or the cache: run again on PostgreSQL + Redis.
BACKENDS = {
    "test_admin_actions",  # bulk writes, all or nothing
    "test_api",  # API writes and history
    "test_api_document",  # import: all or nothing
    "test_leases",  # lease writes, the prune, history
    "test_import_jobs",  # background imports: their threads' transactions and heartbeats
    "test_api_usage",  # hits and last seen read from the database
    "test_background",  # the refresher thread, its own connection
    "test_loader",  # the incremental snapshot against a full rebuild
    "test_origins",  # the model and its constraints
    "test_refresh",  # the generation stamp, invalidation, convergence
    "test_setup",  # the migrations
    "test_shared_hosting_stored",  # stored rows the snapshot must not honour
    "test_snapshot_store",  # snapshot files in the database: PostgreSQL reads them in binary
    "test_status",  # heartbeats in the database (and Redis)
    "test_telemetry_cap",  # refused-origin rows flushed, capped
    "test_usage",  # usage counts flushed into the database
    "test_preview",  # previews: writes rolled back, traffic flushed
    "test_preview_cli",  # previews and confirmations of the command line
    "test_admin_preview",  # the admin's previews: its writes rolled back
    "test_traffic",  # traffic per origin flushed, capped, pruned
    "test_write_outcome",  # a failure at the commit: its outcome said as unknown
    "test_write_refusals",  # every write path of the model
    "test_scopes",  # scopes through the API, the document and the loader
}
# Only some tests of a module: (module, a word in the test's name).
BACKENDS_TESTS = {
    ("test_api_security", "throttl"),  # throttles counted in the cache
    ("test_api_validation", "nul"),  # PostgreSQL refuses a NUL in a query
}
# Touches Django's version-dependent surface (admin, API, migrations, middleware, checks,
# management commands, testutils): run on the oldest Django too.
# But not the tables of decisions and validation (the parity table, checks of origins, hosts,
# deny entries, report mode, API bodies): the same code on every Django, run once on 6.1.
SURFACE_EXCEPT = {
    ("test_dropin", "test_same_response_as_django_cors_headers"),
    ("test_locale", "catalogue"),  # the files, not Django: read once
}
DJANGO_SURFACE = {
    "test_leases",  # the API's authentication and permissions
    "test_leases_manage",  # the admin and the command
    "test_cross_origin",  # a middleware of both stacks, and a system check
    "test_csrf_scope",  # the CSRF middleware and the API's session auth
    "test_admin",
    "test_admin_actions",
    "test_admin_check",
    "test_admin_preview",
    "test_admin_layout",  # Chromium at 1280 px: Django's admin CSS and templates differ by version
    "test_admin_probe",
    "test_admin_text",
    "test_admin_tools",
    "test_admin_usage",
    "test_api",
    "test_api_document",
    "test_api_probe",
    "test_api_security",
    "test_api_usage",
    "test_api_failures",
    "test_bad_input",
    "test_check_browsers",  # check with credentials in the admin, the API and the command line
    "test_cleanup",
    "test_cli",
    "test_cli_errors",
    "test_cli_policy",
    "test_cli_probe",
    "test_cli_progress",
    "test_cli_usage",
    "test_dropin",
    "test_dropin_tools",
    "test_history",
    "test_import_jobs",
    "test_i18n",
    "test_locale",
    "test_middleware",
    "test_noadmin",
    "test_overview",
    "test_preview",
    "test_preview_cli",
    "test_protected",
    "test_readme",  # the README's install and testing snippets, in a fresh site on this Django
    "test_setup",
    "test_status",
    "test_testutils",
    "test_write_outcome",
}


# The API fuzzers: once, in the lane that ends first (django52), as the package test.
FUZZ = {"test_api_schemathesis", "test_api_stateful"}


def module_markers(module: str, name: str) -> list[pytest.MarkDecorator]:
    marks = []
    if module in FUZZ:
        marks.append(pytest.mark.fuzz)
    if module in BACKENDS or any(module == m and word in name for m, word in BACKENDS_TESTS):
        marks.append(pytest.mark.backends)
    if module in DJANGO_SURFACE and not any(module == m and word in name for m, word in SURFACE_EXCEPT):
        marks.append(pytest.mark.django_surface)
    return marks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by module (above); tests that start servers on PostgreSQL + Redis carry ``services``.
    Before ``-m`` deselects (a conftest's hook runs before the plugins')."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        for mark in module_markers(module, item.name):
            item.add_marker(mark)
        if "deployment" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


# --- order independence: the migrations' rows back after a transactional test -------


class MixDbTests:
    """``--mix-db-tests``: the transactional tests run where they fall in the order (the files',
    or pytest-randomly's shuffle of modules and of tests within them), not all last, where
    pytest-django moves them. Module-scoped fixtures are still set up once per module."""

    @pytest.hookimpl(wrapper=True)  # inside pytest-randomly's wrapper: sees its shuffle
    def pytest_collection_modifyitems(self, items: list[pytest.Item]):
        before = {item.nodeid: position for position, item in enumerate(items)}
        result = yield  # pytest-django's grouping, -m and -k deselection
        items.sort(key=lambda item: before.get(item.nodeid, len(before)))
        return result


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("mix_db_tests"):
        config.pluginmanager.register(MixDbTests(), "mix-db-tests")


def flushes_database(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    transaction = bool(marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
    names = getattr(item, "fixturenames", ())
    return transaction or "transactional_db" in names or "live_server" in names


def restore_seeded_rows(config: pytest.Config) -> None:
    """Put back what the migrations seeded (the ``default`` policy, the generation row, content
    types and permissions), which a ``transaction=True`` test's flush removed: every other
    test may rely on it, whatever ran before. Django's own answer (``serialized_rollback``)
    reloads it only at the start of the next test that asks for it."""
    from django.core.management import call_command
    from django.db import DEFAULT_DB_ALIAS, connections
    from pytest_django.plugin import blocking_manager_key

    with config.stash[blocking_manager_key].unblock():
        connection = connections[DEFAULT_DB_ALIAS]
        contents = getattr(connection, "_test_serialized_contents", None)
        if contents:
            # A flush without serialized_rollback re-ran post_migrate: its content types and
            # permissions have new keys and would collide with the saved ones. Start empty.
            call_command(
                "flush",
                verbosity=0,
                interactive=False,
                database=DEFAULT_DB_ALIAS,
                reset_sequences=False,  # the saved rows keep their keys: new ones come after them
                inhibit_post_migrate=True,
            )
            with raw_saves_unstamped():  # as seeded: versions and the generation as they were
                connection.creation.deserialize_db_from_string(contents)
        else:  # no test asked for serialized_rollback: the flush re-ran post_migrate
            from corsadmin.models import Generation, Policy

            Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
            Generation.objects.get_or_create(pk=1)


@contextmanager
def raw_saves_unstamped() -> Iterator[None]:
    """Without the stamping of fixtures' raw saves (``loaddata`` moves the generation): the
    rows come back as they were saved, whatever order the models are registered in."""
    from django.db.models.signals import post_save

    from corsadmin.models import changelog

    receivers = {
        "corsadmin.Policy": "corsadmin_policy_raw_save",
        "corsadmin.AllowedOrigin": "corsadmin_origin_raw_save",
    }
    for sender, uid in receivers.items():
        post_save.disconnect(sender=sender, dispatch_uid=uid)
    try:
        yield
    finally:
        for sender, uid in receivers.items():
            post_save.connect(changelog._stamp_raw_save, sender=sender, dispatch_uid=uid)


SET_UP = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    result = yield  # raises when the set-up failed or skipped: then nothing was flushed
    item.stash[SET_UP] = True
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield
    # After the last test the session's fixtures are gone: the connection names the real
    # database again, which must never be touched.
    if nextitem is not None and item.stash.get(SET_UP, False) and flushes_database(item):
        restore_seeded_rows(item.config)
    return result


@pytest.fixture
def in_process_wsgi():
    """Call the WSGI application directly, as Django's test client does: without closing
    the test's database connection at the end of each request (PostgreSQL would lose the
    test's transaction; SQLite ignores it)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- the API's users and clients (tests/api_fixtures.py) ---------------------------


@pytest.fixture
def admin_user_(db: Any) -> User:
    return User.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def reader(db: Any) -> User:
    return make_user("reader", *(f"view_{m}" for m in MODELS))


@pytest.fixture
def nobody(db: Any) -> User:
    return make_user("nobody")


@pytest.fixture
def full(db: Any) -> User:
    return make_user("operator", *(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS))


@pytest.fixture
def reader_client(reader: User) -> APIClient:
    return token_client(reader)


@pytest.fixture
def nobody_client(nobody: User) -> APIClient:
    return token_client(nobody)


@pytest.fixture
def full_client(full: User) -> APIClient:
    return token_client(full)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium for a browser module's tests (fails, never skips, without it)."""
    with running_chromium() as browser:
        yield browser
