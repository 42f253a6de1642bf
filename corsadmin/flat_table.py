"""A large table of exact origins as flat arrays in one buffer (a snapshot file, mapped): the
compact form of ``EntryTable.exact`` that a process reads without building a dictionary.

Layout (little-endian, each array 8-byte aligned): ``starts`` (uint32, one per hash bucket and
one more) into ``members`` (uint32: the entries of each bucket), ``ids`` (int64, per entry),
``offsets`` (uint32, into ``texts``, one more than entries), ``texts`` (the ASCII origins,
concatenated), then the reverse index: ``sorted_ids`` (int64, ascending) and ``positions``
(uint32, the entry of each). A bucket is
``crc32(origin) & (buckets - 1)``. Every entry never expires (its value is its id); an origin
that is not ASCII is never stored here (the caller keeps it in a dictionary).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

_MAX_OFFSET = 2**32 - 1
HEADER = struct.Struct("<QQ")  # entries, buckets


def _align(size: int) -> int:
    return (size + 7) & ~7


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (_align(len(data)) - len(data))


def encode(texts: Sequence[str], ids: Sequence[int]) -> bytes | None:
    """The buffer of these exact origins and their entry ids (pairs in step); None when they
    cannot be laid out so (a text not ASCII, an id out of int64, more than 4 GB of text).
    Built with whole-list operations (no Python loop per entry)."""
    count = len(texts)
    joined = "".join(texts)
    if count != len(ids) or not joined.isascii() or len(joined) > _MAX_OFFSET:
        return None
    buckets = 1 << max(4, (count - 1).bit_length())
    text_bytes = joined.encode("ascii")
    del joined
    slots = list(map((buckets - 1).__and__, map(zlib.crc32, map(str.encode, texts))))
    members = array("I", sorted(range(count), key=slots.__getitem__))
    counts = Counter(slots)
    starts = array("I", itertools.accumulate(map(counts.get, range(buckets), itertools.repeat(0)), initial=0))
    offsets = array("I", itertools.accumulate(map(len, texts), initial=0))
    try:
        id_array = array("q", ids)
    except (OverflowError, TypeError):
        return None
    if all(map(operator.lt, id_array, itertools.islice(id_array, 1, None))):  # read in id order
        positions, sorted_ids = array("I", range(count)), id_array
    else:
        positions = array("I", sorted(range(count), key=id_array.__getitem__))
        sorted_ids = array("q", sorted(id_array))
    parts = (starts, members, id_array, offsets, text_bytes, sorted_ids, positions)
    return HEADER.pack(count, buckets) + b"".join(_padded(bytes(part)) for part in parts)


class FlatExact(Mapping[str, int]):
    """Exact origins -> entry id, read from ``encode``'s buffer (a ``memoryview``, usually of
    a mapped file: its pages are shared by every process mapping it). Immutable; lookups cost
    one crc32 and a bucket of about one entry. ``text_of(id)``: the reverse, by bisection."""

    __slots__ = (
        "_count",
        "_mask",
        "_starts",
        "_members",
        "_ids",
        "_offsets",
        "_texts",
        "_sorted_ids",
        "_positions",
    )

    def __init__(self, buffer: memoryview) -> None:
        count, buckets = HEADER.unpack_from(buffer, 0)
        if buckets & (buckets - 1) or buckets < count:
            raise ValueError("not a flat table")
        position = HEADER.size

        def take(size: int) -> memoryview:
            nonlocal position
            part = buffer[position : position + size]
            if len(part) != size:
                raise ValueError("a flat table cut short")
            position += _align(size)
            return part

        self._count, self._mask = int(count), int(buckets) - 1
        self._starts = take(4 * (buckets + 1)).cast("I")
        self._members = take(4 * count).cast("I")
        self._ids = take(8 * count).cast("q")
        self._offsets = take(4 * (count + 1)).cast("I")
        self._texts = take(self._offsets[count])
        self._sorted_ids = take(8 * count).cast("q")
        self._positions = take(4 * count).cast("I")
        if self._starts[buckets] != count:
            raise ValueError("a flat table that does not add up")

    def size(self) -> int:
        """How many bytes of the buffer it uses."""
        return HEADER.size + sum(
            _align(part.nbytes)
            for part in (
                self._starts,
                self._members,
                self._ids,
                self._offsets,
                self._texts,
                self._sorted_ids,
                self._positions,
            )
        )

    def get(self, origin: str, default: Any = None) -> Any:
        if not origin.isascii():
            return default
        data = origin.encode("ascii")
        slot = zlib.crc32(data) & self._mask
        starts, members, offsets, texts = self._starts, self._members, self._offsets, self._texts
        size = len(data)
        for k in range(starts[slot], starts[slot + 1]):
            i = members[k]
            start = offsets[i]
            if offsets[i + 1] - start == size and texts[start : start + size] == data:
                return self._ids[i]
        return default

    def __getitem__(self, origin: str) -> int:
        found = self.get(origin)
        if found is None:
            raise KeyError(origin)
        return int(found)

    def __contains__(self, origin: object) -> bool:
        return isinstance(origin, str) and self.get(origin) is not None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        offsets, texts = self._offsets, self._texts
        for i in range(self._count):
            yield bytes(texts[offsets[i] : offsets[i + 1]]).decode("ascii")

    def items(self) -> Iterator[tuple[str, int]]:  # type: ignore[override]
        return zip(iter(self), self._ids, strict=True)

    def text_of(self, entry_id: int) -> str | None:
        """The origin of entry ``entry_id``, if it is in this table."""
        sorted_ids = self._sorted_ids
        k = bisect.bisect_left(sorted_ids, entry_id)
        if k == self._count or sorted_ids[k] != entry_id:
            return None
        i = self._positions[k]
        return bytes(self._texts[self._offsets[i] : self._offsets[i + 1]]).decode("ascii")

    def ids(self) -> Iterable[int]:
        return self._ids
