"""Snapshot files (corsadmin.snapshot_file): a new process starts from the file a full load
wrote and catches up from its generation; a revocation made after the file was written lands;
a file that does not check out is never trusted; two writers at once leave a valid file."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corsadmin.flat_table import FlatExact, encode
from corsadmin.text_index import TextIndex

ROOT = Path(__file__).resolve().parent.parent
N = 3000  # above snapshot_file.FLAT_MIN: the default policy's table goes flat
KNOWN, REVOKED, DISABLED, ADDED = (
    "https://h1.example.com",
    "https://h2.example.com",
    "https://h3.example.com",
    "https://new.example.com",
)


# --- the flat table and the text index, in process --------------------------------------


def flat(pairs: dict[str, int]) -> FlatExact:
    buffer = encode(list(pairs), list(pairs.values()))
    assert buffer is not None
    return FlatExact(memoryview(buffer))


@pytest.mark.parametrize("size", [0, 1, 2, 17, 5000])
@pytest.mark.parametrize("order", ["by id", "shuffled"])
def test_a_flat_table_answers_as_its_dictionary(size, order):
    pairs = {f"https://h{i}.example.com": 10 * i + 3 for i in range(size)}
    if order == "shuffled":
        items = list(pairs.items())
        random.Random(size).shuffle(items)
        pairs = dict(items)
    table = flat(pairs)
    assert len(table) == size
    assert dict(table.items()) == pairs
    for text, entry_id in pairs.items():
        assert table.get(text) == entry_id
        assert table.text_of(entry_id) == text
    for absent in ("https://evil.example.net", "https://h1.example.co", "", "https://h1.example.comx"):
        assert table.get(absent) is None
        assert absent not in table
    assert table.get("https://bücher.example") is None  # not ASCII: never a key here
    assert table.text_of(4) is None


def test_what_cannot_be_flat_is_refused():
    assert encode(["https://bücher.example"], [1]) is None
    assert encode(["https://a.example"], [2**63]) is None


def test_a_flat_table_cut_short_is_refused():
    buffer = encode([f"https://h{i}.example.com" for i in range(100)], list(range(100)))
    assert buffer is not None
    with pytest.raises(ValueError):
        FlatExact(memoryview(buffer[: len(buffer) // 2]))


def test_the_text_index_behaves_as_a_dictionary():
    base = {"https://a.example": 1, "https://b.example": 2, "https://c.example": 3}
    index = TextIndex({9: "https://z.example"}, (flat(base),))
    assert dict(index) == {
        9: "https://z.example",
        1: "https://a.example",
        2: "https://b.example",
        3: "https://c.example",
    }
    assert index.pop(2) == "https://b.example"
    assert index.get(2) is None and len(index) == 3
    index[1] = "https://a2.example"  # changed: shadows the flat table's text
    assert index[1] == "https://a2.example" and len(index) == 3
    del index[1]
    assert 1 not in index and len(index) == 2
    index[2] = "https://b.example"  # back again
    assert dict(index) == {9: "https://z.example", 2: "https://b.example", 3: "https://c.example"}
    with pytest.raises(KeyError):
        del index[42]


# --- real processes on a database of their own --------------------------------------------


def site_runner(directory: Path):
    """Run ``tests.snapshot_process`` commands against the SQLite file in ``directory``."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        REDIS_URL="",
        CORSADMIN_VAR_DIR=str(directory),
        PYTHONPATH=str(ROOT),
    )

    def run(*args: str, wait: bool = True) -> subprocess.Popen[str] | dict:
        argv = [sys.executable, "-m", "tests.snapshot_process", *args]
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if not wait:
            return process
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        lines = out.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    run.files = lambda: sorted((directory / "snapshots").glob("snapshot-*.bin"))  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Path:
    """A database migrated and filled once (N origins, no snapshot file yet), copied by each test."""
    directory = tmp_path_factory.mktemp("snapshot-site")
    site_runner(directory)("fill", str(N))
    return directory / "db.sqlite3"


@pytest.fixture
def site(filled, tmp_path):
    """A database of this test's own (a copy of ``filled``, the same history) and its processes."""
    shutil.copyfile(filled, tmp_path / "db.sqlite3")
    return site_runner(tmp_path)


ORIGINS = (KNOWN, REVOKED, DISABLED, ADDED)


def test_a_full_load_writes_the_file_and_the_next_process_starts_from_it(site):
    first = site("load", *ORIGINS)
    assert (first["full_loads"], first["file_loads"]) == (1, 0)
    assert len(site.files()) == 1
    second = site("load", *ORIGINS)
    assert (second["full_loads"], second["file_loads"]) == (0, 1)
    assert len(site.files()) == 1  # nothing written
    assert second["allowed"] == first["allowed"] == {KNOWN: True, REVOKED: True, DISABLED: True, ADDED: False}


def test_a_revocation_made_after_the_file_was_written_lands_in_the_next_process(site):
    site("load", *ORIGINS)  # writes the file
    site("revoke", REVOKED)  # a tombstone
    site("disable", DISABLED)  # a row stamped after the file's generation
    site("add", ADDED)
    after = site("load", *ORIGINS)
    assert (after["full_loads"], after["file_loads"]) == (0, 1)  # from the file, caught up
    assert after["allowed"] == {KNOWN: True, REVOKED: False, DISABLED: False, ADDED: True}


def test_a_change_log_pruned_past_the_file_means_a_full_load(site):
    site("load", *ORIGINS)
    site("revoke", REVOKED)
    site("prune")  # the tombstone of the revocation is gone: the file cannot be caught up
    after = site("load", *ORIGINS)
    assert (after["full_loads"], after["file_loads"]) == (1, 0)
    assert after["allowed"][REVOKED] is False and after["allowed"][KNOWN] is True


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "permissions"])
def test_a_damaged_file_is_never_trusted(site, damage):
    site("load", *ORIGINS)
    site("revoke", REVOKED)  # what the damaged file would still allow, were it caught up wrongly
    (path,) = site.files()
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) - 100]))
    elif damage == "header":
        data[8] ^= 1  # another format
        path.write_bytes(bytes(data))
    else:
        path.chmod(0o666)  # writable by others: anyone could have written it
    after = site("load", *ORIGINS)
    assert (after["full_loads"], after["file_loads"]) == (1, 0)
    assert after["allowed"] == {KNOWN: True, REVOKED: False, DISABLED: True, ADDED: False}


def test_a_file_of_another_database_history_is_never_read(site, tmp_path):
    site("load", *ORIGINS)
    # The same database file recreated: a new generation row, a new epoch.
    (tmp_path / "db.sqlite3").unlink()
    site("fill", "10")
    after = site("load", KNOWN, "https://h9.example.com", "https://h10.example.com")
    assert (after["full_loads"], after["file_loads"]) == (1, 0)
    assert after["allowed"] == {KNOWN: True, "https://h9.example.com": True, "https://h10.example.com": False}


def test_two_processes_writing_at_once_leave_a_valid_file(site, tmp_path):
    writers = [site("write", "5", wait=False) for _ in range(2)]
    for writer in writers:
        _out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    assert 1 <= len(site.files()) <= 2  # the newest KEEP
    assert not list((tmp_path / "snapshots").glob(".*.tmp"))
    after = site("load", *ORIGINS)
    assert (after["full_loads"], after["file_loads"]) == (0, 1)
    assert after["allowed"] == {KNOWN: True, REVOKED: True, DISABLED: True, ADDED: False}


# --- a file kept fresh by a process that caught up, in process --------------------------


@pytest.mark.django_db(transaction=True)
def test_an_old_file_is_rewritten_from_tables_caught_up_since(settings, tmp_path):
    from corsadmin.loader import SnapshotBuilder
    from corsadmin.models import AllowedOrigin

    settings.CORSADMIN = {**settings.CORSADMIN, "SNAPSHOT_DIR": str(tmp_path)}
    AllowedOrigin.objects.bulk_create(AllowedOrigin(origin=f"https://h{i}.example.com") for i in range(N))
    builder = SnapshotBuilder()
    builder.update()
    assert builder.save() is not None  # the file of the full load; the tables now mapped from it
    files = lambda: sorted(tmp_path.glob("snapshot-*.bin"))  # noqa: E731
    assert len(files()) == 1
    AllowedOrigin.objects.filter(origin=REVOKED).delete()
    AllowedOrigin.objects.create(origin=ADDED)
    assert builder.update() is not None  # caught up: changes on top of the mapped table
    builder.keep_file_fresh()
    assert len(files()) == 1  # the file is recent: not rewritten
    old = time.time() - 86400
    os.utime(files()[0], (old, old))
    builder._file_due = 0.0
    builder.keep_file_fresh()
    assert [int(path.stem.rsplit("-", 1)[1]) for path in files()][-1] == builder.generation
    fresh = SnapshotBuilder()
    snapshot = fresh.update()
    assert (fresh.file_loads, fresh.full_loads) == (1, 0)
    assert snapshot is not None
    allowed = {origin: snapshot.decide(origin, "/").allowed for origin in ORIGINS}
    assert allowed == {KNOWN: True, REVOKED: False, DISABLED: True, ADDED: True}


def test_processes_starting_together_load_in_full_once(site):
    """Three workers starting at once with no file: one loads every row and writes the file,
    the others wait for it and start from it."""
    starting = [site("load", *ORIGINS, wait=False) for _ in range(3)]
    results = []
    for process in starting:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted((r["full_loads"], r["file_loads"]) for r in results) == [(0, 1), (0, 1), (1, 0)]
    assert all(r["allowed"] == {KNOWN: True, REVOKED: True, DISABLED: True, ADDED: False} for r in results)
    assert len(site.files()) == 1
