"""``--dry-run`` and the confirmation of the ``cors`` command's writes (``corsadmin.preview``).

``--dry-run`` runs the write, rolled back, and prints the traffic of the last 7 days it would
flip. A real write that would refuse traffic seen in the last 24 hours asks first: ``y`` on a
terminal; without one (or when standard input is the document) it changes nothing and exits
2 unless ``--yes`` was given, as ``import --replace`` asks.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import OutputWrapper

from .. import preview
from .cli import bad_input

# The writes previewed here: (action, policy action or None). Import previews its own.
WRITES = {("add", None), ("remove", None), ("enable", None), ("disable", None)}
POLICY_WRITES = {"add", "edit", "remove"}


def add_options(parser: Any, dry_run: bool = True) -> None:
    if dry_run:
        parser.add_argument(
            "--dry-run", action="store_true", help="show the recent traffic it would flip, change nothing"
        )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask when it would refuse traffic seen in the last 24 hours"
    )


def previewed(options: dict[str, Any]) -> bool:
    action = options["action"]
    return (action, None) in WRITES or (action == "policy" and options.get("policy_action") in POLICY_WRITES)


def quietly(command: Any, write: Callable[[], object]) -> preview.Preview:
    """The preview of ``write`` with what it prints swallowed (it is rolled back)."""
    stdout, stderr = command.stdout, command.stderr
    command.stdout, command.stderr = OutputWrapper(io.StringIO()), OutputWrapper(io.StringIO())
    try:
        return preview.preview(write)
    finally:
        command.stdout, command.stderr = stdout, stderr


def show(command: Any, result: preview.Preview, heading: str = "Dry run, nothing changed. ") -> None:
    command.stdout.write(f"{heading}Traffic of the last 7 days it would flip:")
    for label, flips in (("would refuse", result.would_refuse), ("would allow", result.would_allow)):
        command.stdout.write(f"{label}: {len(flips) or 'nothing'}")
        for flip in flips:
            command.stdout.write(f"  {preview.describe(flip)}")


def confirm(command: Any, result: preview.Preview, interactive: bool) -> None:
    """Ask before a write that would refuse traffic seen in the last 24 hours (``CommandError``
    when not confirmed: nothing changed)."""
    recent = result.recent_refusals()
    if not recent:
        return
    if not interactive:
        count = preview.origins(recent)
        raise bad_input(
            f"Nothing changed: it would refuse traffic seen in the last 24 hours from {count} "
            "origin(s) (see --dry-run; give --yes to make the change anyway)."
        )
    command.stderr.write(f"It would refuse traffic seen in the last 24 hours ({len(recent)}):")
    for flip in recent:
        command.stderr.write(f"  {preview.describe(flip)}")
    answer = input("Make the change? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise bad_input("Nothing changed: not confirmed (give --yes to skip the question).")


def run(command: Any, options: dict[str, Any], write: Callable[[], object]) -> None:
    """``write()``, previewed (``--dry-run``), or confirmed first when it would refuse recent traffic."""
    if options.get("dry_run"):
        show(command, quietly(command, write))
        return
    if not options.get("yes") and preview.may_refuse_recent():
        confirm(command, quietly(command, write), interactive=sys.stdin.isatty())
    write()
