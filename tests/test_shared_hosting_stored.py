"""A wildcard on shared hosting already stored on a credentials policy (written before the rule,
or around validation) is never honoured, as ``null`` is not there: the snapshot leaves it out
when it is built (one log line), ``check`` says why, and ``corsadmin.W015`` says it is ignored.
The full load and the incremental update agree at every step."""

from __future__ import annotations

import logging

import pytest

from corsadmin import diagnosis
from corsadmin.loader import SnapshotBuilder, load_snapshot
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder

from .cors_helpers import ECHO, cors_headers

pytestmark = pytest.mark.django_db

WILDCARD = "https://*.loca.lt"
STRANGER = "https://stranger.loca.lt"
APP = "https://app.example.com"
LOG_LINE = (
    "corsadmin: ignoring 'https://*.loca.lt' in policy creds, which allows credentials: "
    "loca.lt is a shared hosting platform where anyone can publish"
)


@pytest.fixture
def creds() -> Policy:
    """A credentials policy on /demo/ listing APP, and the wildcard written around validation."""
    policy = Policy.objects.create(name="creds", url_regex="^/demo/", priority=5, allow_credentials=True)
    AllowedOrigin.objects.create(policy=policy, origin=APP)
    row = AllowedOrigin.objects.create(policy=policy, origin="https://x.example.net", csrf_trusted=True)
    AllowedOrigin.objects.filter(pk=row.pk).update(origin=WILDCARD)
    return policy


def ignored(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "ignored_origin"]


def verdicts(snapshot) -> list[tuple[bool, bool]]:
    return [(snapshot.decide(o, ECHO).allowed, snapshot.csrf_trusts(o, ECHO)) for o in (STRANGER, APP)]


def test_the_middleware_does_not_honour_it_and_logs_once(client, caplog, creds):
    holder.reset()
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        refused = cors_headers(client.get(ECHO, HTTP_ORIGIN=STRANGER))
        allowed = cors_headers(client.get(ECHO, HTTP_ORIGIN=APP))
    assert "Access-Control-Allow-Origin" not in refused
    assert allowed["Access-Control-Allow-Origin"] == APP
    assert ignored(caplog) == [LOG_LINE]
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "ignored_origin"]
    assert (record.policy, record.origin) == ("creds", WILDCARD)


def test_it_is_not_csrf_trusted_either(creds):
    assert verdicts(load_snapshot()) == [(False, False), (True, False)]


def test_the_same_wildcard_is_honoured_on_a_policy_without_credentials(creds):
    Policy.objects.filter(pk=creds.pk).update(allow_credentials=False)
    assert verdicts(load_snapshot()) == [(True, True), (True, False)]


def test_the_incremental_update_agrees_with_a_full_load(caplog):
    policy = Policy.objects.create(name="creds", url_regex="^/demo/", priority=5, allow_credentials=True)
    row = AllowedOrigin.objects.create(policy=policy, origin="https://x.example.net", csrf_trusted=True)
    builder = SnapshotBuilder()
    builder.load()
    steps = [
        lambda: AllowedOrigin.objects.filter(pk=row.pk).update(origin=WILDCARD),
        lambda: Policy.objects.filter(pk=policy.pk).update(allow_credentials=False),
        lambda: Policy.objects.filter(pk=policy.pk).update(allow_credentials=True),
        lambda: AllowedOrigin.objects.filter(pk=row.pk).update(origin="https://*.loca.lt:8443"),
    ]
    seen = []
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        for step in steps:
            step()
            incremental = builder.update()
            assert incremental is not None
            assert verdicts(incremental) == verdicts(load_snapshot())
            seen.append(verdicts(incremental)[0])
    assert seen == [(False, False), (True, True), (False, False), (False, False)]
    assert builder.full_loads == 1
    lines = [line for line in ignored(caplog) if "creds" in line]
    assert lines.count(LOG_LINE) == 4  # twice by the builder (newly ignored twice), twice by the full loads


def test_check_explains_why_it_is_refused(creds):
    holder.reset()
    result = diagnosis.explain(STRANGER, ECHO)
    assert result["allowed"] is False
    assert result["reason"].endswith(
        "Note: 'https://*.loca.lt' in policy 'creds' matches it but is not honoured: loca.lt is a shared "
        "hosting platform where anyone can publish, and the policy allows credentials (list the hosts "
        "you own, e.g. https://yourapp.loca.lt, and delete the wildcard)."
    )
