"""``manage.py cors import|export|import-settings``: the allow-list as one JSON document.

The document is checked and applied by ``corsadmin.documents``, as the REST API's ``import/``
and ``export/``; this module reads and writes the files and words the outcome.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from .. import documents, preview
from ..errors import error_lines
from ..fields import too_deep
from . import preview_cli
from .cli import BAD_INPUT, bad_input


class ErrorLines(CommandError):
    """Bad input with several errors: one line in ``call_command``; a process prints a
    heading and then one error per line."""

    def __init__(self, message: str, *, heading: str, lines: list[str]) -> None:
        super().__init__(message.replace("\n", " "), returncode=BAD_INPUT)
        self.heading = heading
        self.lines = lines


def run_import(command: Any, options: dict[str, Any]) -> None:
    """``cors import FILE [--replace] [--dry-run] [--yes]``: all or nothing; errors one a line."""
    user = command.acting_user(options)
    path = options["file"]
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        raise bad_input(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        document = json.loads(text)
        if too_deep(document):
            raise RecursionError
    except RecursionError:
        raise bad_input(f"{path} is nested too deeply to read; nothing imported.") from None
    except ValueError as exc:
        raise bad_input(f"{path} is not valid JSON: {exc}.") from None
    replace, dry_run = options["replace"], options["dry_run"]
    try:
        if replace and not dry_run and not options["yes"] and path != "-" and sys.stdin.isatty():
            planned = documents.import_document(document, replace=True, user=user, dry_run=True)
            deleted = planned.deleted
            answer = input(
                f"--replace deletes {deleted['policies']} policies and {deleted['origins']} origins "
                f"the document does not name ({planned.summary()}). Continue? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise bad_input("Nothing imported: not confirmed (give --yes to skip the question).")
        flips = None
        if dry_run or (not options["yes"] and preview.may_refuse_recent()):  # the import rolled back
            flips = preview_cli.quietly(
                command, lambda: documents.import_document(document, replace=replace, user=user)
            )
        if not dry_run and flips is not None:
            preview_cli.confirm(command, flips, interactive=path != "-" and sys.stdin.isatty())
        result = documents.import_document(document, replace=replace, user=user, dry_run=dry_run)
    except documents.ImportRefused as exc:
        lines = error_lines(exc.errors)
        raise ErrorLines(
            f"Nothing imported: {'; '.join(lines)}",
            heading=f"Nothing imported: {len(lines)} error(s) in {path}:",
            lines=lines,
        ) from None
    if dry_run:
        write_plan(command, path, result)
        if flips is not None and (flips.would_allow or flips.would_refuse):  # (else the plan alone)
            preview_cli.show(command, flips, heading="")
        return
    command.say(f"Imported {path}: {result.summary()}.")
    command.warn(result.warnings)
    command.not_recorded(user)


def write_plan(command: Any, path: str, result: documents.ImportResult) -> None:
    """A dry run's rows, one a line, additions, changes, removals in turn; the counts last."""
    verbs = {"add": _("add"), "change": _("change"), "remove": _("remove")}
    rows = sorted(result.rows, key=lambda row: list(verbs).index(row[0]))  # stable: document order
    if rows:
        command.stdout.write(_("Dry run of %(path)s, nothing changed. The import would:") % {"path": path})
    else:
        command.stdout.write(
            _("Dry run of %(path)s, nothing changed. The import would change nothing.") % {"path": path}
        )
    width = max((len(verb) for verb in verbs.values()), default=0)
    for verb, what, values in rows:
        command.stdout.write(f"  {verbs[verb]:<{width}}  {what}" + (f": {values}" if values else ""))
    command.stdout.write(_("Would have %(summary)s.") % {"summary": result.summary()})


def run_export(command: Any, options: dict[str, Any]) -> None:
    """``cors export [FILE]``: the document, to standard output or a file."""
    text = json.dumps(documents.export_document(), indent=2) + "\n"
    path = options["file"]
    if not path or path == "-":
        command.stdout.write(text, ending="")
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise bad_input(f"Cannot write {path}: {exc.strerror}.") from None
    command.say(f"Exported to {path}.")


def run_import_settings(command: Any, options: dict[str, Any]) -> None:
    """``cors import-settings [--dry-run]``: django-cors-headers' ``CORS_*`` settings into the database."""
    try:
        from .. import settings_import
    except ModuleNotFoundError as exc:
        if exc.name != "corsadmin.settings_import":
            raise
        raise CommandError("import-settings is not available in this version of corsadmin.") from None
    user = command.acting_user(options)
    try:
        quiet = command.verbosity == 0 and not options["dry_run"]  # a dry run's plan was asked for
        settings_import.run(
            stdout=io.StringIO() if quiet else command.stdout, dry_run=options["dry_run"], user=user
        )
    except settings_import.ImportProblem as exc:
        raise bad_input(str(exc)) from None
    if not options["dry_run"]:
        command.not_recorded(user)
