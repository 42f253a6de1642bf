"""The incremental snapshot decides exactly like a full rebuild, after any sequence of writes.

Random sequences of writes of every kind (model save and delete, queryset update and
delete, bulk create and update, policy changes and deletes, loaddata-style raw saves);
after each write the builder applies what changed since its generation, and its snapshot
must decide every probe like a snapshot built from scratch.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest
from django.core import serializers
from django.core.exceptions import ValidationError
from django.utils import timezone

from corsadmin.entries import EntryTable
from corsadmin.loader import SnapshotBuilder, load_snapshot
from corsadmin.models import AllowedOrigin, Generation, Policy, Tombstone, request_reload

pytestmark = pytest.mark.django_db

TEXTS = [
    "https://app.example.com",
    "https://other.example.com",
    "https://*.example.com",
    "http://localhost:*",
    "https://*.example.org:8443",
    "null",
    "https://partner.example.net",
    "https://*.loca.lt",  # shared hosting: never honoured on a credentials policy
]
PROBES = [
    "https://app.example.com",
    "https://other.example.com",
    "https://deep.sub.example.com",
    "http://localhost:3000",
    "https://x.example.org:8443",
    "null",
    "https://partner.example.net",
    "https://evil.example.net",
    "https://stranger.loca.lt",
]
PATHS = ["/", "/api/items/", "/admin/"]
HOSTS = [None, "api.example.com", "www.example.org"]
HOST_LISTS = [[], [], ["api.example.com"], ["*.example.org"]]


def decisions(snapshot) -> list:
    out = []
    for origin in PROBES:
        for path in PATHS:
            for host in HOSTS:
                out.append(snapshot.csrf_trusts(origin, path, host))
                for method, preflight in (("GET", False), ("OPTIONS", True)):
                    d = snapshot.decide(origin, path, method, preflight, host=host)
                    out.append(
                        (
                            d.covered, d.allowed, d.policy, d.matched, d.entry_id, dict(d.headers),
                            d.denied_policy, d.denied_by, d.would_refuse,
                        )
                    )  # fmt: skip
    return out


class Writer:
    """Random writes through every write path."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def policy(self) -> Policy:
        return self.rng.choice(list(Policy.objects.all()))

    def origin(self) -> AllowedOrigin | None:
        rows = list(AllowedOrigin.objects.all())
        return self.rng.choice(rows) if rows else None

    def expiry(self):
        return self.rng.choice(
            [None, None, timezone.now() + timedelta(days=1), timezone.now() - timedelta(days=1)]
        )

    def write(self) -> None:
        rng = self.rng
        op = rng.choice(
            [
                "create", "create", "create", "save", "move", "delete", "qs_update", "qs_delete",
                "bulk_create", "bulk_update", "policy_create", "policy_save", "policy_delete",
                "policy_qs_update", "raw_save", "qs_effect", "policy_save", "credentials",
                "credentials", "hosting_update",
            ]
        )  # fmt: skip
        try:
            getattr(self, op)()
        except ValidationError:
            pass  # refused (e.g. what a credentials policy cannot list): nothing written

    def _new(self, policy: Policy) -> AllowedOrigin:
        text = self.rng.choice(TEXTS)
        deny = self.rng.random() < 0.25
        return AllowedOrigin(
            origin=text,
            policy=policy,
            enabled=self.rng.random() < 0.8,
            effect="deny" if deny else "allow",
            csrf_trusted=not deny and text != "null" and self.rng.random() < 0.3,
            expires_at=self.expiry(),
        )

    def create(self) -> None:
        policy = self.policy()
        entry = self._new(policy)
        if policy.allow_credentials and entry.origin == "null" and not entry.is_deny:
            return
        if not AllowedOrigin.objects.filter(policy=policy, origin=entry.origin).exists():
            entry.save()

    def save(self) -> None:
        entry = self.origin()
        if entry:
            entry.enabled = not entry.enabled
            if self.rng.random() < 0.3 and not (entry.origin == "null" and entry.policy.allow_credentials):
                entry.effect = "allow" if entry.is_deny else "deny"
            entry.csrf_trusted = not entry.is_deny and entry.origin != "null" and self.rng.random() < 0.5
            entry.expires_at = self.expiry()
            entry.save()

    def move(self) -> None:
        entry, policy = self.origin(), self.policy()
        if entry and not AllowedOrigin.objects.filter(policy=policy, origin=entry.origin).exists():
            if not (policy.allow_credentials and entry.origin == "null" and not entry.is_deny):
                entry.policy = policy
                entry.save()

    def delete(self) -> None:
        entry = self.origin()
        if entry:
            entry.delete()

    def qs_update(self) -> None:
        AllowedOrigin.objects.filter(policy=self.policy()).update(enabled=self.rng.random() < 0.5)

    def qs_delete(self) -> None:
        AllowedOrigin.objects.filter(origin=self.rng.choice(TEXTS)).delete()

    def bulk_create(self) -> None:
        policy = self.policy()
        taken = set(AllowedOrigin.objects.filter(policy=policy).values_list("origin", flat=True))
        new = {}
        for _ in range(3):
            entry = self._new(policy)
            if entry.origin not in taken and not (
                policy.allow_credentials and entry.origin == "null" and not entry.is_deny
            ):
                new[entry.origin] = entry
        AllowedOrigin.objects.bulk_create(new.values())

    def bulk_update(self) -> None:
        rows = list(AllowedOrigin.objects.filter(csrf_trusted=False)[:3])
        for row in rows:
            row.enabled = self.rng.random() < 0.5
            if row.origin != "null":
                row.effect = self.rng.choice(["allow", "deny"])
        AllowedOrigin.objects.bulk_update(rows, ["enabled", "effect"])

    def policy_create(self) -> None:
        name = f"p{self.rng.randrange(4)}"
        if not Policy.objects.filter(name=name).exists():
            Policy.objects.create(
                name=name, url_regex=self.rng.choice(["^/api/", "^/"]), priority=self.rng.randrange(3)
            )

    def policy_save(self) -> None:
        policy = self.policy()
        policy.enabled = self.rng.random() < 0.7
        policy.max_age = self.rng.choice([0, 60])
        policy.allow_all_origins = self.rng.random() < 0.2 and not policy.allow_credentials
        policy.mode = self.rng.choice(["enforce", "enforce", "report"])
        policy.hosts = self.rng.choice(HOST_LISTS)
        policy.save()

    def policy_delete(self) -> None:
        policy = self.policy()
        if policy.name != "default":
            policy.delete()

    def policy_qs_update(self) -> None:
        changes = self.rng.choice(
            [
                {"priority": self.rng.randrange(3)},
                {"mode": "report"},
                {"mode": "enforce"},
                {"hosts": ["api.example.com"]},
            ]
        )
        Policy.objects.filter(name=self.policy().name).update(**changes)

    def credentials(self) -> None:
        """Turn credentials on or off around validation (what it stores may then be ignored)."""
        policy = self.policy()
        if not policy.allow_all_origins:
            Policy.objects.filter(pk=policy.pk).update(allow_credentials=not policy.allow_credentials)

    def hosting_update(self) -> None:
        """An entry turned into an allowed wildcard on shared hosting around validation (on a
        credentials policy when there is one: what the snapshot must ignore)."""
        on_credentials = list(AllowedOrigin.objects.filter(policy__allow_credentials=True))
        entry = self.rng.choice(on_credentials) if on_credentials else self.origin()
        if entry:
            rows = AllowedOrigin.objects.filter(policy=entry.policy, origin=TEXTS[-1])
            if not rows.exists():
                rows = AllowedOrigin.objects.filter(pk=entry.pk)
            rows.update(origin=TEXTS[-1], enabled=True, effect="allow", expires_at=None)

    def qs_effect(self) -> None:
        """Turn a policy's entries into exceptions or back in one queryset update."""
        rows = AllowedOrigin.objects.filter(policy=self.policy(), csrf_trusted=False)
        if self.rng.random() < 0.5:
            rows.exclude(origin="null").update(effect="deny")
        else:
            rows.filter(policy__allow_credentials=False).update(effect="allow")

    def raw_save(self) -> None:
        """What loaddata does: a raw save of a serialized row."""
        entry = self.origin()
        if entry:
            entry.note = f"loaded {self.rng.random()}"
            data = serializers.serialize("json", [entry])
            for obj in serializers.deserialize("json", data):
                obj.save()


@pytest.mark.parametrize("seed", range(12))
def test_incremental_snapshot_decides_like_a_full_rebuild(seed):
    builder = SnapshotBuilder()
    builder.load()
    writer = Writer(seed)
    for _ in range(40):
        writer.write()
        incremental = builder.update() or builder._snapshot()
        assert incremental.generation == load_snapshot().generation
        assert decisions(incremental) == decisions(load_snapshot())
    assert builder.full_loads == 1


def test_nothing_changed_is_one_query(django_assert_num_queries):
    builder = SnapshotBuilder()
    builder.load()
    with django_assert_num_queries(1):
        assert builder.update() is None


def test_a_reload_request_rebuilds_from_scratch():
    builder = SnapshotBuilder()
    builder.load()
    request_reload()
    builder.update()
    assert builder.full_loads == 2


def test_a_builder_behind_the_pruned_change_log_rebuilds_from_scratch(settings):
    builder = SnapshotBuilder()
    builder.load()
    AllowedOrigin.objects.create(origin="https://app.example.com").delete()
    Tombstone.objects.update(created_at=timezone.now() - timedelta(days=2))
    settings.CORSADMIN = {**settings.CORSADMIN, "CHANGE_LOG_RETENTION": 86400}
    AllowedOrigin.objects.create(origin="https://other.example.com").delete()  # prunes the old one
    assert Generation.objects.get(pk=1).pruned > builder.generation
    builder.update()
    assert builder.full_loads == 2


def test_a_large_delete_asks_for_a_reload_not_a_tombstone_per_row():
    policy = Policy.objects.get(name="default")
    AllowedOrigin.objects.bulk_create(
        AllowedOrigin(origin=f"https://h{i}.example.com", policy=policy) for i in range(600)
    )
    AllowedOrigin.objects.all().delete()
    assert list(Tombstone.objects.values_list("kind", flat=True)) == [Tombstone.RELOAD]


@pytest.mark.parametrize("seed", range(4))
def test_folding_recent_changes_decides_the_same(seed, monkeypatch):
    monkeypatch.setattr(EntryTable, "FOLD_AT", 2)
    builder = SnapshotBuilder()
    builder.load()
    writer = Writer(100 + seed)
    for _ in range(30):
        writer.write()
        incremental = builder.update() or builder._snapshot()
        assert decisions(incremental) == decisions(load_snapshot())


def test_cors_reload_command_asks_every_process_for_a_full_load():
    from django.core.management import call_command

    builder = SnapshotBuilder()
    builder.load()
    call_command("cors", "reload")
    builder.update()
    assert (builder.full_loads, Tombstone.objects.filter(kind=Tombstone.RELOAD).count()) == (2, 1)


# --- a row written around validation ------------------------------------------------------

APP = "https://app.example.com"
OTHER = "https://other.example.com"
# RE2 refuses both (a lookahead), so they would run in Python's re, which cannot compile them.
BAD_REGEXES = {
    "overflow": ("^/(?=a)a{99999999999}", "OverflowError"),
    "recursion": ("^/(?=a)" + "(" * 5000 + ")" * 5000, "RecursionError"),
}


def storable_bad_regexes() -> list[str]:
    """The kinds the database in use can hold: PostgreSQL's ``url_regex`` is varchar(512), too
    short to nest deep enough for a RecursionError (SQLite, the embedded pass, stores it)."""
    on_postgresql = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    return sorted(
        kind for kind, (pattern, _) in BAD_REGEXES.items() if len(pattern) <= 512 or not on_postgresql
    )


def write_around_validation(model, pk, **values) -> None:
    """A stamped write that skips every check (as raw SQL, or the QuerySet.update of old)."""
    from django.db import models, transaction

    from corsadmin.models import next_generation

    with transaction.atomic():
        models.QuerySet(model).filter(pk=pk).update(version=next_generation("default"), **values)


def default_policy() -> Policy:
    return Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})[0]


@pytest.mark.parametrize("kind", storable_bad_regexes())
def test_a_policy_that_cannot_be_compiled_is_skipped_and_later_changes_still_arrive(kind, caplog):
    import logging

    pattern, error = BAD_REGEXES[kind]
    default = default_policy()
    bad = Policy.objects.create(name="bad", url_regex="^/bad/")
    revoked = AllowedOrigin.objects.create(origin=APP, policy=default)
    builder = SnapshotBuilder()
    builder.load()
    write_around_validation(Policy, bad.pk, url_regex=pattern)
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        snapshot = builder.update()
        builder.update()  # nothing new: no second line
    [skipped] = snapshot.skipped
    assert (skipped.kind, skipped.name, skipped.reason.split(":")[0]) == ("policy", "bad", error)
    lines = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "ignored_policy"]
    assert lines == [
        f"corsadmin: ignoring policy bad, it cannot be compiled ({skipped.reason}); fix or delete it"
    ]
    revoked.delete()
    AllowedOrigin.objects.create(origin=OTHER, policy=default)
    snapshot = builder.update()
    assert snapshot is not None
    assert (snapshot.policy_allows("default", APP), snapshot.policy_allows("default", OTHER)) == (False, True)
    fresh = load_snapshot()  # a new process loads the rest
    assert [row.name for row in fresh.skipped] == ["bad"]
    assert decisions(fresh) == decisions(snapshot)


def test_an_origin_that_cannot_be_read_is_skipped_and_the_rest_loads(monkeypatch):
    from corsadmin import entries as snapshot_module

    default = default_policy()
    AllowedOrigin.objects.create(origin=APP, policy=default)
    odd = AllowedOrigin.objects.create(origin=OTHER, policy=default)
    entry_key = snapshot_module.entry_key

    def failing(text):
        if text == OTHER:
            raise RecursionError("maximum recursion depth exceeded")
        return entry_key(text)

    monkeypatch.setattr(snapshot_module, "entry_key", failing)
    snapshot = load_snapshot()
    assert snapshot.policy_allows("default", APP) is True
    assert [(row.kind, row.row_id, row.reason) for row in snapshot.skipped] == [
        ("origin", odd.pk, "RecursionError: maximum recursion depth exceeded")
    ]


@pytest.mark.parametrize("path", ["update", "reload"])
def test_a_build_that_fails_changes_nothing(path, monkeypatch):
    from corsadmin import loader

    default = default_policy()
    revoked = AllowedOrigin.objects.create(origin=APP, policy=default)
    builder = SnapshotBuilder()
    builder.load()
    known = builder.generation
    revoked.delete()
    AllowedOrigin.objects.create(origin=OTHER, policy=default)
    Policy.objects.filter(pk=default.pk).update(allow_credentials=True)
    if path == "reload":
        request_reload()
    with monkeypatch.context() as patch:
        patch.setattr(loader, "settings_snapshot", _broken)
        with pytest.raises(RuntimeError):
            builder.update()
    assert builder.generation == known  # the next cycle tries again
    snapshot = builder.update()
    assert snapshot is not None
    assert snapshot.generation == Generation.objects.get(pk=1).value
    assert decisions(snapshot) == decisions(load_snapshot())


def _broken(*args, **kwargs):
    raise RuntimeError("the build broke halfway")


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (Policy, {"url_regex": BAD_REGEXES["overflow"][0]}),
        (Policy, {"url_regex": "^/(?=a)"}),
        (Policy, {"allow_methods": ["GET POST"]}),
        (Policy, {"allow_headers": "x-a"}),
        (Policy, {"hosts": ["exa mple.com"]}),
        (Policy, {"mode": "loud"}),
        (Policy, {"max_age": -1}),
        (Policy, {"name": "x" * 65}),
        (Policy, {"allow_all_origins": True, "allow_credentials": True}),
        (AllowedOrigin, {"effect": "maybe"}),
        (AllowedOrigin, {"origin": "javascript://x"}),
        (AllowedOrigin, {"effect": "deny", "csrf_trusted": True}),
    ],
)
def test_queryset_update_refuses_what_save_refuses(model, values):
    from django.core.exceptions import ValidationError

    default = default_policy()
    row = default if model is Policy else AllowedOrigin.objects.create(origin=APP, policy=default)
    before = Generation.objects.get(pk=1).value
    with pytest.raises(ValidationError):
        model.objects.filter(pk=row.pk).update(**values)
    assert Generation.objects.get(pk=1).value == before
    assert model.objects.filter(pk=row.pk, version=row.version).exists()  # untouched


def test_queryset_update_cleans_what_it_sets_as_save_does():
    from django.db.models import F

    default = default_policy()
    Policy.objects.filter(pk=default.pk).update(
        allow_methods=["get", "put", "GET"], hosts=["API.Example.com"], priority=F("priority") + 1
    )
    default.refresh_from_db()
    assert (default.allow_methods, default.hosts) == (["GET", "PUT"], ["api.example.com"])


def test_check_and_manage_py_check_name_a_skipped_policy():
    from django.core import checks

    from corsadmin import diagnosis
    from corsadmin.refresh import holder

    bad = Policy.objects.create(name="bad", url_regex="^/bad/")
    write_around_validation(Policy, bad.pk, url_regex=BAD_REGEXES["overflow"][0])
    warnings = [m for m in checks.run_checks(databases=["default"]) if m.id == "corsadmin.W011"]
    expected = (
        f"The policy bad (id {bad.pk}) is left out of the CORS allow-list: it cannot be compiled "
        "(OverflowError: the repetition number is too large)."
    )
    assert [m.msg for m in warnings] == [expected]
    holder.reset()
    result = diagnosis.explain(APP, "/bad/x")
    assert result["reason"].endswith(
        " Left out of the allow-list, as they cannot be compiled (written around validation; fix or "
        f"delete them): policy bad (id {bad.pk}): OverflowError: the repetition number is too large."
    )
