import pytest

from corsadmin import bus
from corsadmin.refresh import holder

from .e2e import deployment, report_line, start_server  # noqa: F401  (fixtures of the production tests)


def forget_shared_generation():
    """With REDIS_URL set the cache outlives each test's rolled-back database: drop its stamp."""
    try:
        shared = bus.shared_bus()
        if shared is not None:
            shared.forget()
    except Exception:  # noqa: BLE001, S110  (a cache that does not answer has no stamp to drop)
        pass


@pytest.fixture(autouse=True)
def fresh_snapshot():
    """Each test starts with no snapshot, so its first request loads the test's data."""
    holder.reset()
    forget_shared_generation()
    yield
    holder.reset()


def pytest_collection_modifyitems(items):
    """Tests that start servers on PostgreSQL + Redis carry the ``services`` marker."""
    for item in items:
        if "deployment" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


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
