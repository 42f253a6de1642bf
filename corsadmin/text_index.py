"""Entry id -> stored text for a snapshot builder started from a snapshot file: the flat
tables' own reverse indexes underneath, the changes since in a small dictionary on top."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from .flat_table import FlatExact


class TextIndex(MutableMapping[int, str]):
    """``extra`` (id -> text) first, then the ``flats`` (read-only), less the ids in ``gone``
    (removed, or shadowed by ``extra``). Behaves as the ``dict[int, str]`` it replaces."""

    __slots__ = ("extra", "flats", "gone")

    def __init__(self, extra: dict[int, str], flats: tuple[FlatExact, ...]) -> None:
        self.extra = extra
        self.flats = flats
        self.gone: set[int] = set()

    def _flat(self, entry_id: int) -> str | None:
        if entry_id in self.gone:
            return None
        for flat in self.flats:
            text = flat.text_of(entry_id)
            if text is not None:
                return text
        return None

    def __getitem__(self, entry_id: int) -> str:
        text = self.extra.get(entry_id)
        if text is None:
            text = self._flat(entry_id)
            if text is None:
                raise KeyError(entry_id)
        return text

    def __setitem__(self, entry_id: int, text: str) -> None:
        if entry_id not in self.extra and self._flat(entry_id) is not None:
            self.gone.add(entry_id)  # shadowed from now on
        self.extra[entry_id] = text

    def __delitem__(self, entry_id: int) -> None:
        if entry_id in self.extra:
            del self.extra[entry_id]
            return
        if self._flat(entry_id) is None:
            raise KeyError(entry_id)
        self.gone.add(entry_id)

    def __iter__(self) -> Iterator[int]:
        yield from self.extra
        for flat in self.flats:
            for entry_id in flat.ids():
                if entry_id not in self.gone:
                    yield entry_id

    def __len__(self) -> int:
        return len(self.extra) + sum(map(len, self.flats)) - len(self.gone)
