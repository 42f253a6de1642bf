"""Snapshot files kept in the database too, for a host that has none yet (a new machine, a fresh
clone, a new deploy directory): it reads one file's bytes (a few ``StoredSnapshot`` rows)
instead of every origin, installs them in its ``SNAPSHOT_DIR`` and maps them as any file, then
catches up from the file's generation as any refresh does. So an origin revoked after the file
was stored is revoked before the new process serves its first snapshot.

With ``CORSADMIN["SHARED_SNAPSHOTS"]`` (default True; only with ``SNAPSHOT_DIR``), each process's
refresher looks after its first snapshot, then once a minute (ten after it stored one), whether
the database holds a file of its epoch that is no older than half ``CHANGE_LOG_RETENTION`` and
that a process can still catch up from (no ``cors reload`` since, the change log not pruned past
it); if not, and this host's newest file is newer, it stores that file (one process of the host at a
time; all parts in one transaction; the newest ``snapshot_file.KEEP`` of the epoch are kept, the
rest deleted). A stored file is used only when it checks out as a local one does (magic,
versions, length, checksum, epoch, a generation between the database's pruned and current
ones); it is then labelled with this host's connection (``snapshot_file.source``) and installed.
The stored bytes describe the database's own rows: they are as trusted as those rows.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import mmap
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from . import conf, flat_table, snapshot_file
from .models import Generation, StoredSnapshot, Tombstone

logger = logging.getLogger("corsadmin")

PART = 1 << 20  # bytes per row: each statement short, and the driver's buffers (kept per connection) small


def enabled() -> bool:
    return snapshot_file.directory() is not None and bool(conf.get("SHARED_SNAPSHOTS"))


def first_state(using: str, progress: Callable[[], None]) -> snapshot_file.State | None:
    """Where a process's first snapshot starts: this host's newest usable file, else one the
    database holds (installed here first); None: a full load."""
    state = snapshot_file.newest(using)
    if state is not None or not enabled():
        return state
    stamp = Generation.objects.using(using).filter(pk=1).values_list("value", "pruned", "epoch").first()
    if stamp is None or not stamp[2]:
        return None
    generation, pruned, epoch = stamp
    if not fetch(using, epoch, generation, pruned, progress):
        return None
    return snapshot_file.read(using, epoch, generation, pruned)


def fetch(using: str, epoch: str, generation: int, pruned: int, progress: Callable[[], None]) -> bool:
    """Install the newest stored file of ``epoch`` the database can catch up from (at most
    ``generation``, not behind ``pruned``) in this host's snapshot directory. Whether it did;
    a stored file that does not check out is logged and passed over."""
    folder = snapshot_file.directory()
    stored = (
        StoredSnapshot.objects.using(using)
        .filter(epoch=epoch, part=0, generation__lte=generation, generation__gte=pruned)
        .order_by("-generation")
        .values_list("generation", "parts")[: snapshot_file.KEEP]
    )
    for stamp, parts in list(stored):
        if folder is None:
            break
        try:
            _install(folder, _parts(using, epoch, stamp, parts, progress), epoch, stamp, using)
        except LookupError:
            continue  # deleted meanwhile (a newer one was stored)
        except (ValueError, OSError, EOFError, TypeError) as exc:
            logger.warning(
                "corsadmin: ignoring the snapshot file stored in the database (generation %s): %s",
                stamp,
                exc,
                extra={"event": "snapshot_file_error"},
            )
            continue
        return True
    return False


def _install(folder: Path, parts: Iterator[bytes], epoch: str, stamp: int, using: str) -> None:
    """Spool the parts to an unnamed file of the directory (no copy of the whole held in
    memory), check them, and install them relabelled for this host."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as spool:
        for chunk in parts:
            spool.write(chunk)
        spool.flush()
        # Not closed here: a failed check's traceback may still hold views of it (the
        # collector unmaps it once they are gone).
        view = memoryview(mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ))
        payload = relabel(view, epoch, stamp, snapshot_file.source(using))
        snapshot_file.install(folder, snapshot_file.file_name(epoch, stamp), payload)


def _parts(using: str, epoch: str, stamp: int, parts: int, progress: Callable[[], None]) -> Iterator[bytes]:
    """The parts of one stored file, in order (LookupError: one is missing). On PostgreSQL
    through psycopg 3 in binary (half the bytes of the text form, and no decoding)."""
    raw = _psycopg(using)
    if raw is not None:
        sql = f"SELECT data FROM {_table(using)} WHERE epoch = %s AND generation = %s AND part = %s"
        with raw.cursor(binary=True) as cursor:
            for part in range(parts):
                progress()
                row = cursor.execute(sql, (epoch, stamp, part)).fetchone()
                if row is None:
                    raise LookupError(part)
                yield row[0]
    else:
        rows = StoredSnapshot.objects.using(using).filter(epoch=epoch, generation=stamp)
        for part in range(parts):
            progress()
            value = rows.filter(part=part).values_list("data", flat=True).first()
            if value is None:
                raise LookupError(part)
            yield bytes(value)
    progress()


def relabel(view: memoryview, epoch: str, stamp: int, origin: str) -> list[Any]:
    """The payload of a stored file that checks out, labelled with this host's ``source``
    (another host may reach the same database by another name)."""
    description, position = snapshot_file.unpack(view)
    if description.get("epoch") != epoch or description.get("generation") != stamp:
        raise ValueError("another database's, or another generation's")
    description["source"] = origin
    head = marshal.dumps(description)
    rest = view[snapshot_file.HEADER.size + position :]
    return [struct.pack("<Q", len(head)), flat_table._padded(head), rest]


def share(using: str, epoch: str, progress: Callable[[], None] = lambda: None) -> bool:
    """Store this host's newest file of ``epoch`` when the database holds none of the epoch as
    new that is younger than half ``CHANGE_LOG_RETENTION`` and still caught up from (no
    ``cors reload`` since, the change log not pruned past it; see the module's docstring).
    Whether it stored one. Never inside a transaction."""
    folder = snapshot_file.directory()
    if folder is None or not enabled() or not epoch or connections[using].in_atomic_block:
        return False
    local = _newest_local(folder, epoch)
    if local is None:
        return False
    stored = (
        StoredSnapshot.objects.using(using)
        .filter(epoch=epoch, part=0)
        .order_by("-generation")
        .values_list("generation", "created_at")
        .first()
    )
    recent = timezone.now() - timedelta(seconds=float(conf.get("CHANGE_LOG_RETENTION")) / 2)
    if stored is not None and (stored[0] >= local[0] or (stored[1] > recent and _usable(using, stored[0]))):
        return False
    with _host_lock(folder) as locked:
        if not locked:
            return False  # another process of the host is storing it
        with open(local[1], "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)
            try:
                description, _position = snapshot_file.unpack(view)  # never store a bad file
                if description.get("epoch") != epoch or description.get("generation") != local[0]:
                    return False
                return _store(using, epoch, local[0], view, progress)
            finally:
                view.release()


def _usable(using: str, generation: int) -> bool:
    """Whether a process can still catch up from ``generation`` (no reload asked since, the
    change log not pruned past it): else a new host would load in full all the same."""
    pruned = Generation.objects.using(using).filter(pk=1).values_list("pruned", flat=True).first() or 0
    reload = Tombstone.objects.using(using).filter(kind=Tombstone.RELOAD, generation__gt=generation)
    return generation >= pruned and not reload.exists()


def _store(using: str, epoch: str, generation: int, data: memoryview, progress: Callable[[], None]) -> bool:
    parts = max(1, -(-len(data) // PART))
    rows = StoredSnapshot.objects.using(using)
    raw = _psycopg(using)
    conflict: tuple[type[BaseException], ...] = (IntegrityError,)
    try:
        with transaction.atomic(using=using):
            if raw is not None:  # binary parameters, straight from the mapped file: no copies
                import psycopg

                conflict += (psycopg.IntegrityError,)
                sql = f"INSERT INTO {_table(using)} (epoch, generation, part, parts, data, created_at) "
                sql += "VALUES (%s, %s, %s, %s, %s, %s)"
                now = timezone.now()
                with raw.cursor() as cursor:
                    for part in range(parts):
                        progress()
                        chunk = data[part * PART : (part + 1) * PART]
                        cursor.execute(sql, (epoch, generation, part, parts, chunk, now), binary=True)
                        chunk.release()
            else:
                for part in range(parts):
                    piece = bytes(data[part * PART : (part + 1) * PART])
                    rows.create(epoch=epoch, generation=generation, part=part, parts=parts, data=piece)
            keep = list(
                rows.filter(epoch=epoch, part=0)
                .order_by("-generation")
                .values_list("generation", flat=True)[: snapshot_file.KEEP]
            )
            rows.exclude(epoch=epoch).delete()
            rows.filter(epoch=epoch).exclude(generation__in=keep).delete()
    except conflict:
        return False  # another host stored the same generation
    logger.debug(
        "corsadmin: stored the allow-list's snapshot file in the database (generation %s, %s bytes)",
        generation,
        len(data),
        extra={"event": "snapshot_file_stored", "generation": generation},
    )
    return True


def _psycopg(using: str) -> Any:
    """The connection's psycopg 3 connection on PostgreSQL (None: another database or driver)."""
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql" and type(raw).__module__.startswith("psycopg."):
        return raw
    return None


def _table(using: str) -> str:
    return str(connections[using].ops.quote_name(StoredSnapshot._meta.db_table))


def _newest_local(folder: Path, epoch: str) -> tuple[int, Path] | None:
    prefix = f"snapshot-{epoch}-"
    found = []
    for path in folder.glob(prefix + "*.bin"):
        with contextlib.suppress(ValueError):
            found.append((int(path.name[len(prefix) : -len(".bin")]), path))
    return max(found, default=None)


@contextlib.contextmanager
def _host_lock(folder: Path) -> Iterator[bool]:
    """The host's lock file, taken without waiting: yields whether this process holds it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            snapshot_file._try_lock(fd)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
