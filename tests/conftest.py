import pytest

from corsadmin.refresh import holder


@pytest.fixture(autouse=True)
def fresh_snapshot():
    """Each test starts with no snapshot, so its first request loads the test's data."""
    holder.reset()
    yield
    holder.reset()
