"""Progress of long command-line work (``cors import``, ``export``, ``import-settings``).

The work itself (``documents``, ``settings_import``) marks its stages with ``stage()`` and
its steps with ``advance()``. Both do nothing unless the command line opened ``shown()``
around the call, which it does only on a terminal and without ``--quiet``, or a background
import tracks it (``tracked()``, ``corsadmin.import_jobs``): scripts and pipes never see a
bar. The bar is tqdm's, on standard error, where tqdm is installed (``pip install
"corsadmin[cli]"``); without it the work runs the same, with no bar.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from io import TextIOBase
from typing import TYPE_CHECKING, Protocol, TextIO, cast

if TYPE_CHECKING:

    class Bar(Protocol):
        """What is used of a tqdm bar (tqdm is imported only where its absence is caught)."""

        def update(self, n: float | None = 1) -> bool | None: ...

        def close(self) -> None: ...


class _Bars:
    """One tqdm bar per stage, on one stream."""

    def __init__(self, stream: TextIO | TextIOBase) -> None:
        self.stream = stream
        self.bar: Bar | None = None

    def stage(self, description: str, total: int | None, unit: str) -> None:
        try:
            from tqdm import tqdm
        except ImportError:  # the core install: no bar
            return
        self.close()
        # Follow the terminal's size; 80x24 where it has none (a bare pty says 0x0, and tqdm
        # would hide the bar).
        follow = min(_size(self.stream)) > 0
        self.bar = tqdm(
            desc=description,
            total=total,
            unit=unit,
            file=self.stream,
            dynamic_ncols=follow,
            ncols=None if follow else 80,
            nrows=None if follow else 24,
            mininterval=0.2,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def update(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)


class Tracker(Protocol):
    """What follows the stages: a terminal's bars, or a background import's row."""

    def stage(self, description: str, total: int | None, unit: str) -> None: ...

    def update(self, steps: int) -> None: ...

    def close(self) -> None: ...


def _size(stream: TextIO | TextIOBase) -> tuple[int, int]:
    try:
        return cast("tuple[int, int]", tuple(os.get_terminal_size(stream.fileno())))
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return (0, 0)


_current: ContextVar[Tracker | None] = ContextVar("corsadmin_progress", default=None)


def active() -> bool:
    return _current.get() is not None


def stage(description: str, total: int | None = None, unit: str = "origin") -> None:
    """Start a stage of ``total`` steps (None: a count without an end)."""
    bars = _current.get()
    if bars is not None:
        bars.stage(description, total, unit)


def done() -> None:
    """The last stage is over: draw its bar complete, before the command prints its summary."""
    bars = _current.get()
    if bars is not None:
        bars.close()


def advance(steps: int = 1) -> None:
    tracker = _current.get()
    if tracker is not None:
        tracker.update(steps)


def wanted(stream: object, quiet: bool = False) -> bool:
    """A bar only for a person watching: ``stream`` is a terminal and ``--quiet`` is off."""
    isatty = getattr(stream, "isatty", None)
    return not quiet and callable(isatty) and bool(isatty())


@contextmanager
def shown(stream: TextIO | TextIOBase, enabled: bool) -> Iterator[None]:
    """Show the stages run inside this block on ``stream`` (when ``enabled``)."""
    if not enabled:
        yield
        return
    with tracked(_Bars(stream)):
        yield


@contextmanager
def tracked(tracker: Tracker) -> Iterator[None]:
    """Tell ``tracker`` the stages and steps of the work run inside this block."""
    token = _current.set(tracker)
    try:
        yield
    finally:
        tracker.close()
        _current.reset(token)
