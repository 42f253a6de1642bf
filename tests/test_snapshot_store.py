"""Snapshot files kept in the database (corsadmin.snapshot_store): a host with no file of its own
starts from the one the database holds and catches up, so a revocation made after it was stored
lands; a stored file that does not check out, or that the change log no longer reaches, is never
used; the refresher stores one only when the database lacks one as new."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from corsadmin import snapshot_file, snapshot_store
from corsadmin.flat_table import FlatExact
from corsadmin.loader import SnapshotBuilder
from corsadmin.models import AllowedOrigin, Generation, StoredSnapshot, request_reload

N = 40  # above FLAT_MIN as the fixture sets it: the default policy's table goes flat
KNOWN, REVOKED, DISABLED, ADDED = (
    "https://h1.example.com",
    "https://h2.example.com",
    "https://h3.example.com",
    "https://new.example.com",
)
ORIGINS = (KNOWN, REVOKED, DISABLED, ADDED)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host(settings, tmp_path, monkeypatch):
    """Point SNAPSHOT_DIR at a directory of a named host (a machine of its own)."""
    monkeypatch.setattr(snapshot_file, "FLAT_MIN", 16)

    def use(name: str) -> None:
        settings.CORSADMIN = {**settings.CORSADMIN, "SNAPSHOT_DIR": str(tmp_path / name)}

    use("a")
    AllowedOrigin.objects.bulk_create(AllowedOrigin(origin=f"https://h{i}.example.com") for i in range(N))
    return use


def stored_by_host_a(monkeypatch) -> SnapshotBuilder:
    """Host A's full load, its file, and that file stored in the database. Host A reaches the
    database by another name: the stored file carries A's label, not this host's."""
    with monkeypatch.context() as patch:
        patch.setattr(snapshot_file, "source", lambda using: "host-a")
        builder = SnapshotBuilder()
        builder.update()
        assert builder.save() is not None
        assert any(isinstance(table.exact, FlatExact) for table in builder._tables.values())
        assert snapshot_store.share("default", builder._epoch) is True
    return builder


def decisions(builder: SnapshotBuilder) -> dict[str, bool]:
    snapshot = builder._snapshot()
    return {origin: snapshot.decide(origin, "/").allowed for origin in ORIGINS}


def test_a_host_without_a_file_starts_from_the_stored_one_and_catches_up(host, monkeypatch, tmp_path):
    stored_by_host_a(monkeypatch)
    AllowedOrigin.objects.filter(origin=REVOKED).delete()  # a tombstone after the file was stored
    AllowedOrigin.objects.filter(origin=DISABLED).update(enabled=False)  # a row stamped later
    AllowedOrigin.objects.create(origin=ADDED)
    host("b")
    builder = SnapshotBuilder()
    assert builder.update() is not None
    assert (builder.file_loads, builder.full_loads) == (1, 0)
    assert decisions(builder) == {KNOWN: True, REVOKED: False, DISABLED: False, ADDED: True}
    assert len(list((tmp_path / "b").glob("snapshot-*.bin"))) == 1  # installed: the next process maps it


def test_the_next_process_of_that_host_reads_its_own_copy(host, monkeypatch):
    stored_by_host_a(monkeypatch)
    host("b")
    SnapshotBuilder().update()  # installs the stored file
    StoredSnapshot.objects.all().delete()
    builder = SnapshotBuilder()
    builder.update()
    assert (builder.file_loads, builder.full_loads) == (1, 0)


@pytest.mark.parametrize("damage", ["flip", "missing part", "another generation"])
def test_a_stored_file_that_does_not_check_out_is_never_used(host, monkeypatch, caplog, damage):
    stored_by_host_a(monkeypatch)
    AllowedOrigin.objects.filter(origin=REVOKED).delete()
    parts = StoredSnapshot.objects.order_by("part")
    if damage == "flip":
        first = parts.first()
        data = bytearray(first.data)
        data[len(data) // 2] ^= 0x40
        parts.filter(pk=first.pk).update(data=bytes(data))
    elif damage == "missing part":
        StoredSnapshot.objects.update(parts=F("parts") + 1)
    else:  # the rows say generation 0, the file inside says another
        generation = Generation.objects.get(pk=1).value
        StoredSnapshot.objects.update(generation=generation)
    host("b")
    builder = SnapshotBuilder()
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        builder.update()
    assert (builder.file_loads, builder.full_loads) == (0, 1)
    assert decisions(builder) == {KNOWN: True, REVOKED: False, DISABLED: True, ADDED: False}
    if damage != "missing part":
        assert "ignoring the snapshot file stored in the database" in caplog.text


def test_a_stored_file_the_change_log_no_longer_reaches_is_not_used(host, monkeypatch):
    stored_by_host_a(monkeypatch)
    AllowedOrigin.objects.filter(origin=REVOKED).delete()
    Generation.objects.filter(pk=1).update(pruned=F("value"))  # the revocation's tombstone is gone
    host("b")
    builder = SnapshotBuilder()
    builder.update()
    assert (builder.file_loads, builder.full_loads) == (0, 1)
    assert decisions(builder)[REVOKED] is False


def test_nothing_is_stored_or_read_when_sharing_is_off(host, settings, monkeypatch):
    builder = SnapshotBuilder()
    builder.update()
    builder.save()
    settings.CORSADMIN = {**settings.CORSADMIN, "SHARED_SNAPSHOTS": False}
    assert snapshot_store.share("default", builder._epoch) is False
    assert not StoredSnapshot.objects.exists()
    settings.CORSADMIN = {**settings.CORSADMIN, "SHARED_SNAPSHOTS": True}
    snapshot_store.share("default", builder._epoch)
    settings.CORSADMIN = {**settings.CORSADMIN, "SHARED_SNAPSHOTS": False}
    host("b")
    fresh = SnapshotBuilder()
    fresh.update()
    assert (fresh.file_loads, fresh.full_loads) == (0, 1)


def test_a_file_is_stored_again_only_when_the_stored_one_is_old_and_this_one_newer(host, monkeypatch):
    builder = stored_by_host_a(monkeypatch)
    epoch, first = builder._epoch, builder.generation
    assert snapshot_store.share("default", epoch) is False  # the same generation is there
    AllowedOrigin.objects.create(origin=ADDED)
    builder.update()
    assert snapshot_file.write(builder._state(builder.generation), epoch, "default") is not None
    assert snapshot_store.share("default", epoch) is False  # newer here, but the stored one is recent
    StoredSnapshot.objects.update(created_at=timezone.now() - timedelta(days=1))
    StoredSnapshot.objects.create(epoch="0" * 32, generation=0, part=0, parts=1, data=b"old history")
    assert snapshot_store.share("default", epoch) is True
    generations = set(StoredSnapshot.objects.values_list("epoch", "generation"))
    assert generations == {(epoch, first), (epoch, builder.generation)}  # the newest KEEP of this epoch


def test_a_file_is_stored_again_after_a_reload_even_when_the_stored_one_is_recent(host, monkeypatch):
    builder = stored_by_host_a(monkeypatch)
    request_reload()  # raw SQL writes: every process loads in full, the stored file is no use
    builder.update()
    assert builder.full_loads == 2
    builder.save()
    assert snapshot_store.share("default", builder._epoch) is True
    assert StoredSnapshot.objects.filter(generation=builder.generation).exists()


def test_two_hosts_storing_the_same_generation_leave_one_copy(host, monkeypatch, tmp_path):
    builder = stored_by_host_a(monkeypatch)
    (path,) = (tmp_path / "a").glob("snapshot-*.bin")
    data = memoryview(path.read_bytes())
    assert snapshot_store._store("default", builder._epoch, builder.generation, data, lambda: None) is False
    parts = StoredSnapshot.objects.filter(generation=builder.generation)
    assert b"".join(bytes(row.data) for row in parts.order_by("part")) == data


def test_the_refresher_stores_after_its_first_snapshot_then_waits(host, django_assert_num_queries):
    from corsadmin.refresh import holder

    holder.refresh()  # the first cycle: a full load, and its file written
    refresher = holder._refresher
    refresher._share()
    assert StoredSnapshot.objects.filter(generation=refresher.builder.generation).exists()
    with django_assert_num_queries(0):
        refresher._share()  # not due for another ten minutes
    assert refresher._share_due > time.monotonic() + 500
