"""A snapshot builder's tables in a file, once per full load, for the next process to start from.

With ``CORSADMIN["SNAPSHOT_DIR"]`` set (default None: off), the process that completes a full
load writes what it loaded to ``snapshot-<epoch>-<generation>.bin`` there, and a new process
reads the newest such file instead of loading every row, then catches up from its generation
as any refresh does (rows stamped after it, tombstones; a pruned change log or a reload
tombstone: a full load). So an origin revoked after the file was written is revoked in the new
process before its first snapshot is served.

The file: a header (magic, format, Python's ``marshal`` version, length and CRC-32 of the rest),
then a ``marshal``-ed description of plain data (policy rows, small tables, patterns, texts of
the entries outside flat tables, CSRF entries, skipped rows; no object of any other type), then
each large exact table as ``flat_table`` arrays, mapped rather than read: the pages are shared
by every process mapping the file. A file is used only when all of it checks out (magic,
versions, length, checksum, the database's ``epoch`` and source, a generation the database has
not gone back from, owned by this user and not writable by others); anything else is ignored
and the process loads in full. Written to a temporary file and renamed (atomic); the newest
``KEEP`` files are kept, older ones deleted. A process that has kept its tables up to date since
rewrites the file when the newest is older than half ``CHANGE_LOG_RETENTION`` (``refresh``), so
that a restart after days of uptime still finds a file the change log reaches back to.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import mmap
import os
import secrets
import stat
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections

from . import conf, flat_table
from .entries import EntryTable
from .models import Generation
from .text_index import TextIndex

try:
    import fcntl
except ImportError:  # not POSIX: snapshot files still work, with no lock between processes
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("corsadmin")

MAGIC = b"CORSSNAP"
FORMAT = 2  # 2: scoped entries (CSRF and WebSocket) instead of CSRF-trusted ones
HEADER = struct.Struct("<8sIIIIQ")  # magic, format, marshal version, python (major*100+minor), crc, length
KEEP = 2
# Seconds a starting process waits for another one of the host to write the first file.
FIRST_LOAD_WAIT = 60.0
# An allow or deny table with at least this many exact entries that never expire goes flat.
FLAT_MIN = 2048
# At most this many of its exact entries may stay in a dictionary (expiring, not ASCII).
FLAT_LEFTOVERS = 1024
_PYTHON = sys.version_info[0] * 100 + sys.version_info[1]


@dataclass
class State:
    """What a ``SnapshotBuilder`` holds (see its docstring), as of ``generation``."""

    generation: int
    policies: dict[int, dict[str, Any]]
    tables: dict[tuple[int, bool], EntryTable]
    texts: Any  # dict[int, str] or TextIndex
    scoped: dict[int, tuple[int, Any, int]]
    bad: dict[int, tuple[Any, ...]]
    epoch: str = ""  # the database's, when the tables were read


def directory() -> Path | None:
    value = conf.get("SNAPSHOT_DIR")
    return Path(value) if value else None


def source(using: str) -> str:
    """Which database a file belongs to (besides its epoch): vendor, name, host, port."""
    connection = connections[using]
    settings = connection.settings_dict
    key = "|".join(str(settings.get(k) or "") for k in ("NAME", "HOST", "PORT"))
    return hashlib.sha256(f"{connection.vendor}|{key}".encode()).hexdigest()[:32]


def database_epoch(using: str) -> str:
    """The database's epoch ("" when snapshot files are off, or no generation row yet)."""
    if directory() is None:
        return ""
    return Generation.objects.using(using).filter(pk=1).values_list("epoch", flat=True).first() or ""


def newest(using: str) -> State | None:
    """The state of the newest usable file for this database; None: off, or none usable."""
    if directory() is None:
        return None
    stamp = Generation.objects.using(using).filter(pk=1).values_list("value", "pruned", "epoch").first()
    return read(using, stamp[2], stamp[0], stamp[1]) if stamp else None


def save(state: State, epoch: str, using: str) -> State | None:
    """Write the state of a full load at ``epoch`` and read it back (the flat tables mapped);
    None when off, inside a transaction (what it holds may yet roll back), without an epoch (the
    full load saw it move: another history), or when it failed (logged). No query."""
    if directory() is None or not epoch or connections[using].in_atomic_block:
        return None
    path = write(state, epoch, using)
    if path is None:
        return None
    try:
        return _open(path, epoch, source(using), state.generation)
    except Exception as exc:  # noqa: BLE001  (keep the tables loaded)
        logger.warning(
            "corsadmin: could not read back the snapshot file %s: %s",
            path,
            exc,
            extra={"event": "snapshot_file_error"},
        )
        return None


def refresh(state: State, using: str) -> bool:
    """Rewrite the file from ``state`` (a builder's tables, caught up since its last full load)
    when this host's newest file of its epoch is missing or older than half
    ``CHANGE_LOG_RETENTION`` (past the whole of it, a new process could no longer catch up
    from it). One process of the host at a time (a lock file); never inside a transaction.
    Whether it tried to write (the caller then waits longer before it looks again)."""
    folder = directory()
    if folder is None or not state.epoch or connections[using].in_atomic_block:
        return False
    if not _stale(folder, state.epoch):
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        return True
    try:
        _try_lock(lock)
    except OSError:  # another process of the host is writing it
        os.close(lock)
        return False
    try:
        if _stale(folder, state.epoch):
            write(state, state.epoch, using)
            return True
        return False
    finally:
        os.close(lock)  # and the lock with it


@contextlib.contextmanager
def first_load_lock(wait: float = FIRST_LOAD_WAIT) -> Iterator[None]:
    """Around a process's first read when it has no snapshot yet: one process of the host at a
    time. So when there is no file yet, one process loads in full and writes it while the
    others wait (at most ``wait`` seconds, then they go on by themselves) and then read it:
    gunicorn's workers starting together load the list once, not once each. With a file there
    already, no lock: reading it costs each process a fraction of a second."""
    folder = directory()
    lock = None
    if folder is not None and not any(folder.glob("snapshot-*.bin")):
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while lock is not None:
        try:
            _try_lock(lock)
            break
        except OSError:
            if time.monotonic() >= deadline:
                os.close(lock)
                lock = None
            else:
                time.sleep(0.05)
    try:
        yield
    finally:
        if lock is not None:
            os.close(lock)


def _try_lock(fd: int) -> None:
    """Lock ``fd`` now or raise OSError (held by another process)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _stale(folder: Path, epoch: str) -> bool:
    newest = max((_mtime(path) for path in folder.glob(f"snapshot-{epoch}-*.bin")), default=0.0)
    return time.time() - newest > float(conf.get("CHANGE_LOG_RETENTION")) / 2


# --- writing ---------------------------------------------------------------------------------


def _split(table: EntryTable) -> tuple[bytes | None, dict[str, Any]]:
    """(the flat form of the table's lasting ASCII exact entries, the exact entries left over);
    (None, all of them) when the table is small or too mixed to go flat."""
    exact = table.exact
    if len(exact) < FLAT_MIN:
        return None, dict(exact)
    values = list(exact.values())
    if set(map(type, values)) == {int}:  # the common case: no loop per entry
        return flat_table.encode(list(exact), values), {}
    texts, ids, rest = [], [], {}
    for text, value in exact.items():
        if type(value) is int and text.isascii():
            texts.append(text)
            ids.append(value)
        else:
            rest[text] = value
            if len(rest) > FLAT_LEFTOVERS:
                return None, dict(exact)
    return flat_table.encode(texts, ids), rest


def _payload(state: State, epoch: str, origin: str) -> list[bytes]:
    """The parts of the file after its header, in order."""
    blobs: list[bytes] = []
    tables = []
    texts = {}
    for key, table in state.tables.items():
        table = table.folded()
        flat, rest = _split(table)
        index = None
        if flat is not None:
            index = len(blobs)
            blobs.append(flat)
        tables.append((key[0], key[1], index, rest, table.patterns))
        # The texts of the entries outside flat tables (a flat table has its own).
        for value in rest.values():
            entry_id = value if type(value) is int else value[0]
            texts[entry_id] = state.texts[entry_id]
        for entry in table.patterns.values():
            texts[entry[0]] = state.texts[entry[0]]
    description = {
        "generation": state.generation,
        "epoch": epoch,
        "source": origin,
        "policies": state.policies,
        "tables": tables,
        "texts": texts,
        "scoped": state.scoped,
        "bad": {pk: tuple(row) for pk, row in state.bad.items()},
        "blobs": [len(blob) for blob in blobs],
    }
    head = marshal.dumps(description)
    return [struct.pack("<Q", len(head)), flat_table._padded(head), *map(flat_table._padded, blobs)]


def write(state: State, epoch: str, using: str) -> Path | None:
    """Write the state's file in the snapshot directory (None: off or failed, logged)."""
    folder = directory()
    if folder is None or not epoch:
        return None
    started = time.perf_counter()
    try:
        name = file_name(epoch, state.generation)
        install(folder, name, _payload(state, epoch, source(using)))
    except Exception as exc:  # noqa: BLE001  (a file not written costs the next start a full load)
        logger.warning(
            "corsadmin: could not write the allow-list's snapshot file: %s",
            exc,
            extra={"event": "snapshot_file_error"},
        )
        return None
    logger.debug(
        "corsadmin: wrote the allow-list's snapshot file %s (generation %s, %.2f s)",
        name,
        state.generation,
        time.perf_counter() - started,
        extra={"event": "snapshot_file_written", "generation": state.generation},
    )
    return folder / name


def file_name(epoch: str, generation: int) -> str:
    return f"snapshot-{epoch}-{generation:020d}.bin"


def install(folder: Path, name: str, parts: list[Any]) -> None:
    """Write a header and ``parts`` (the payload, in order) to ``folder / name``: a temporary
    file renamed (atomic), then the older files pruned. Raises on failure."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    length = sum(map(len, parts))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(HEADER.pack(MAGIC, FORMAT, marshal.version, _PYTHON, crc, length))
            for part in parts:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _prune(folder)


def _prune(folder: Path) -> None:
    """Keep the newest ``KEEP`` files; drop temporary files left over (an hour old)."""
    files = sorted(folder.glob("snapshot-*.bin"), key=_mtime, reverse=True)
    for old in files[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
    for tmp in folder.glob(".snapshot-*.tmp"):
        if _mtime(tmp) < time.time() - 3600:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --- reading ---------------------------------------------------------------------------------


def read(using: str, epoch: str, generation: int, pruned: int) -> State | None:
    """The newest usable file's state for this database (its epoch, at most ``generation``, not
    behind ``pruned``); None when there is none (each file refused is logged once)."""
    folder = directory()
    if folder is None or not epoch:
        return None
    prefix = f"snapshot-{epoch}-"
    try:
        names = sorted((p.name for p in folder.glob(prefix + "*.bin")), reverse=True)
    except OSError:
        return None
    origin = source(using)
    for name in names:
        try:
            stamp = int(name[len(prefix) : -len(".bin")])
        except ValueError:
            continue
        if stamp > generation or stamp < pruned:
            continue
        try:
            return _open(folder / name, epoch, origin, stamp)
        except Exception as exc:  # noqa: BLE001  (corrupt, truncated, foreign: load in full instead)
            logger.warning(
                "corsadmin: ignoring the snapshot file %s: %s",
                name,
                exc,
                extra={"event": "snapshot_file_error"},
            )
    return None


def unpack(view: memoryview) -> tuple[dict[str, Any], int]:
    """(the description, where the flat tables start in the payload) of a file's bytes, when
    they check out (magic, versions, length, checksum); ValueError otherwise."""
    if len(view) < HEADER.size:
        raise ValueError("cut short")
    magic, version, marshal_version, python, crc, length = HEADER.unpack_from(view, 0)
    if magic != MAGIC or version != FORMAT or marshal_version != marshal.version or python != _PYTHON:
        raise ValueError("another format or Python")
    payload = view[HEADER.size :]
    if len(payload) != length:
        raise ValueError("cut short or too long")
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch")
    (head_size,) = struct.unpack_from("<Q", payload, 0)
    description = marshal.loads(payload[8 : 8 + head_size])
    if not isinstance(description, dict):
        raise ValueError("not a snapshot file")
    return description, flat_table._align(8 + head_size)


def _open(path: Path, epoch: str, origin: str, stamp: int) -> State:
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ValueError("not owned by this user, or writable by others")
        if info.st_size < HEADER.size:
            raise ValueError("cut short")
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    description, position = unpack(view)
    payload = view[HEADER.size :]
    if (
        description.get("epoch") != epoch
        or description.get("source") != origin
        or description.get("generation") != stamp
    ):
        raise ValueError("another database's, or another generation's")
    flats = []
    for size in description["blobs"]:
        flats.append(flat_table.FlatExact(payload[position : position + size]))
        position += flat_table._align(size)
    tables: dict[tuple[int, bool], EntryTable] = {}
    for policy_id, deny, index, rest, patterns in description["tables"]:
        if index is None:
            table = EntryTable(rest, patterns)
        else:
            table = EntryTable(flats[index], patterns, rest)
        table.seal()
        tables[policy_id, deny] = table
    return State(
        epoch=epoch,
        generation=stamp,
        policies=description["policies"],
        tables=tables,
        texts=TextIndex(description["texts"], tuple(flats)),
        scoped=description["scoped"],
        bad=description["bad"],
    )
