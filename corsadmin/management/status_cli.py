"""``manage.py cors status [--json] [--max-age SECONDS]``: what ``/api/cors/status/`` answers.

Exit status: 0 every live process serves the database's allow-list, 1 one or more is stale
(so a script can alert), 2 bad input or the heartbeats cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from django.core.management.base import CommandError

from .. import status
from .cli import BAD_INPUT, REFUSED

STALE = REFUSED  # 1


def add_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="the generation each live server process serves (exit 0 all current, 1 any stale)",
        description="Show the database's generation and, for every live server process, the "
        "generation it serves, how long ago the database confirmed it, and its last error. "
        "Exit 0 when every process is current, 1 when any is stale, 2 when the status cannot be read.",
    )
    p.add_argument("--json", action="store_true", help="print what /api/cors/status/ answers")
    p.add_argument(
        "--max-age",
        metavar="SECONDS",
        type=_seconds,
        help="stale when unconfirmed for longer than this (default: DATABASE_CHECK_EVERY + 1 "
        "intervals plus twice SERVICE_TIMEOUT)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def run(command: Any, options: dict[str, Any]) -> str | None:
    """Print the status; returns why the exit status is ``STALE``, or None when all are current."""
    try:
        result = status.report(options.get("max_age"))
    except Exception as exc:  # noqa: BLE001  (the database or the cache holding the heartbeats)
        raise CommandError(
            f"The status cannot be read: {type(exc).__name__}: {exc}".strip(), returncode=BAD_INPUT
        ) from None
    total, stale = status.summary(result)
    if options.get("json"):
        command.stdout.write(json.dumps(result, indent=2))
    else:
        print_table(command, result, options.get("max_age"))
    return f"{stale} of {total} process(es) stale" if stale else None


def print_table(command: Any, result: dict[str, Any], max_age: float | None) -> None:
    database = result["generation"]
    command.stdout.write(f"database generation: {database}")
    rows = [("PROCESS", "GENERATION", "CONFIRMED", "STATUS", "LAST ERROR")]
    for p in result["processes"]:
        rows.append(
            (
                p["id"],
                "-" if p["generation"] is None else str(p["generation"]),
                "never" if p["age_seconds"] is None else f"{p['age_seconds']:.1f} s ago",
                _state(p, database),
                (p["last_error"] or "-").replace("\n", " ")[:100],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        command.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    total, stale = status.summary(result)
    if not total:
        command.stdout.write("no live process has reported (a process reports once it has served a request)")
        return
    limit = status.default_max_age() if max_age is None else max_age
    command.stdout.write(
        f"{total} process(es), {stale} stale (stale: behind the database for over "
        f"{status.grace():g} s, or unconfirmed for over {limit:g} s)"
    )


def _state(process: dict[str, Any], database: int) -> str:
    generation = process["generation"]
    if not process["stale"]:
        return "current" if generation == database else f"catching up ({database - generation} behind)"
    if generation is None or process["age_seconds"] is None:
        return "STALE (nothing loaded)"
    if generation < database:
        return f"STALE ({database - generation} behind)"
    if generation > database:
        return "STALE (ahead of the database)"
    return "STALE (unconfirmed)"
