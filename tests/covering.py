"""Pairwise covering designs: every pair of values of any two dimensions in at least one row.

A covering design replaces a full product when the outcome depends on a few dimensions at
a time: the parity table (tests/test_dropin.py) crosses each of its settings with a
pairwise design over the request's dimensions instead of every request. Generated
greedily (AETG-style) from a fixed seed, so the rows are the same on every run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Row = dict[str, Any]
Pair = tuple[tuple[str, Any], tuple[str, Any]]


def _pairs(row: Mapping[str, Any]) -> set[Pair]:
    return {((a, row[a]), (b, row[b])) for a, b in itertools.combinations(sorted(row), 2)}


def pairwise(
    dimensions: Mapping[str, Sequence[Any]],
    allowed: Callable[[Row], bool] = lambda row: True,
    *,
    seed: int = 0,
    candidates: int = 8,
) -> list[Row]:
    """Rows (dicts, one value per dimension) covering every pair ``allowed`` admits.

    ``allowed`` is asked about partial rows too and must answer for what they hold."""
    names = sorted(dimensions)
    rng = random.Random(seed)
    uncovered = [
        pair
        for a, b in itertools.combinations(names, 2)
        for pair in _pairs_of(a, dimensions[a], b, dimensions[b])
        if allowed(dict(pair))
    ]
    left = set(uncovered)
    rows: list[Row] = []
    while left:
        best: tuple[int, Row] | None = None
        for _ in range(candidates):
            row = dict(rng.choice([p for p in uncovered if p in left]))
            for name in rng.sample([n for n in names if n not in row], len(names) - len(row)):
                values = list(dimensions[name])
                rng.shuffle(values)
                scored = [
                    (sum(pair in left for pair in _pairs({**row, name: value})), value)
                    for value in values
                    if allowed({**row, name: value})
                ]
                row[name] = max(scored, key=lambda s: s[0])[1]
            gain = len(_pairs(row) & left)
            if best is None or gain > best[0]:
                best = (gain, row)
        assert best is not None
        rows.append(best[1])
        left -= _pairs(best[1])
    return rows


def _pairs_of(a: str, a_values: Sequence[Any], b: str, b_values: Sequence[Any]) -> list[Pair]:
    return [((a, x), (b, y)) for x in a_values for y in b_values]


def uncovered_pairs(
    rows: Sequence[Row], dimensions: Mapping[str, Sequence[Any]], allowed: Callable[[Row], bool]
) -> set[Pair]:
    """The admissible pairs no row holds (empty for a covering design)."""
    names = sorted(dimensions)
    wanted = {
        pair
        for a, b in itertools.combinations(names, 2)
        for pair in _pairs_of(a, dimensions[a], b, dimensions[b])
        if allowed(dict(pair))
    }
    return wanted - set().union(*(_pairs(row) for row in rows))
