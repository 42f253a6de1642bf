"""``manage.py cors``: the allow-list from the command line.

The models' validation and the admin history, as the admin and the REST API (whose field
rules read the typed input of ``check`` and whose field names ``--json`` shows: ``records``). Exit status:
0 success (``check``: allowed), 1 ``check`` refused, 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from ... import history, progress
from ...fields import DAYS_MESSAGE, MAX_DAYS
from ...models import AllowedOrigin, Policy, request_reload
from ...origins import canonical_origin
from ...records import origin_record
from ...usage import unused, with_usage
from ...widening import write_warnings
from ...wording import entry_status
from .. import check_cli, cli, document_cli, policy_cli, preview_cli, probe_cli, status_cli, token_cli
from ..cli import bad_input, os_user
from ..document_cli import ErrorLines

QUIET_HELP = "no progress bar (there is none anyway when standard error is not a terminal)"
VERBOSITY_HELP = (
    "0: quiet (no report of what was done, no progress bar; what you asked to see, warnings "
    "and errors still print); 1: normal (default)"
)


def verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbosity`` after any action too (``cors import f.json -v 0``), as Django's own
    commands take it anywhere. ``SUPPRESS``: an action's parser sets it only when given, so it
    never overwrites a ``-v`` given before the action."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "-v",
                    "--verbosity",
                    type=int,
                    choices=[0, 1, 2, 3],
                    default=argparse.SUPPRESS,
                    help=VERBOSITY_HELP,
                )
                verbosity_everywhere(sub)


class QuietExit(CommandError):
    """An exit status whose reason is already on standard output (e.g. ``check --json``):
    a process exits with it and prints nothing more; ``call_command`` raises it."""


class Command(BaseCommand):
    help = "Manage the CORS allow-list: list, add, remove, enable, disable, check, import, export, probe."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        def origin_action(name: str, help: str, writes: bool = True) -> CommandParser:
            p = sub.add_parser(name, help=help, description=help)
            p.add_argument("origin", help="e.g. https://app.example.com")
            p.add_argument("--policy", default="default", help="the policy's name (default: default)")
            if writes:
                p.add_argument("--user", help="the Django user to record the change under")
                preview_cli.add_options(p)
            return p

        p = sub.add_parser("list", help="list allowed origins", description="List allowed origins.")
        p.add_argument("--policy", help="only this policy's origins")
        p.add_argument("--json", action="store_true", help="print JSON, as the API shows origins")
        p.add_argument(
            "--unused-days",
            metavar="N",
            help="only allow entries never seen, or not seen for N days (a whole number, 1 to 36500); "
            "never an exception (deny entry)",
        )

        p = origin_action("add", "allow an origin")
        p.add_argument("--note", default="", help="a note, e.g. who asked for it")
        p.add_argument("--expires", help="ISO 8601 date-time after which the entry stops matching")
        p.add_argument("--csrf-trusted", action="store_true", help="also trust it for Django's CSRF check")
        p.add_argument(
            "--scope", action="append", dest="scopes", help="cors (default), csrf or websocket; repeatable"
        )
        p.add_argument("--disabled", action="store_true", help="add it disabled")
        p.add_argument(
            "--effect", help="allow (default) or deny: an exception refusing the origin in its policy"
        )
        p.add_argument("--deny", action="store_true", help="the same as --effect deny")

        origin_action("remove", "remove an allowed origin")
        origin_action("enable", "enable an allowed origin")
        origin_action("disable", "disable an allowed origin")

        check_cli.add_arguments(sub)

        p = sub.add_parser(
            "import",
            help="import an exported JSON document, all or nothing",
            description="Import a document written by 'cors export' (or GET /api/cors/export/).",
        )
        p.add_argument("file", help="the JSON file, or - for standard input")
        p.add_argument("--replace", action="store_true", help="delete what the document does not name")
        p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
        p.add_argument(
            "--yes", action="store_true", help="do not ask for confirmation (--replace, recent traffic)"
        )
        p.add_argument("--user", help="the Django user to record the changes under")
        p.add_argument("--quiet", action="store_true", help=QUIET_HELP)

        p = sub.add_parser("export", help="export every policy with its origins as JSON")
        p.add_argument("file", nargs="?", help="write here instead of standard output")
        p.add_argument("--quiet", action="store_true", help=QUIET_HELP)

        p = sub.add_parser(
            "import-settings",
            help="copy django-cors-headers CORS_* settings into the database",
            description="Copy django-cors-headers CORS_* settings into the database.",
        )
        p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
        p.add_argument("--user", help="the Django user to record the changes under")
        p.add_argument("--quiet", action="store_true", help=QUIET_HELP)

        policy_cli.add_arguments(sub)
        status_cli.add_arguments(sub)
        token_cli.add_arguments(sub)
        probe_cli.add_arguments(sub)
        sub.add_parser(
            "reload",
            help="make every server process reload the whole allow-list (after raw SQL writes)",
            description="Make every server process reload the whole allow-list from the database. "
            "Needed only after writing corsadmin's tables with raw SQL.",
        )
        verbosity_everywhere(parser)

    _from_argv = False

    def run_from_argv(self, argv: list[str]) -> None:
        self._from_argv = True
        super().run_from_argv(argv)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except (QuietExit, ErrorLines) as exc:
            if not self._from_argv:
                raise
            if isinstance(exc, ErrorLines):
                self.stderr.write(f"CommandError: {exc.heading}")
                for line in exc.lines:
                    self.stderr.write(f"  {line}")
            from django.db import connections

            connections.close_all()
            sys.exit(exc.returncode)

    def do_reload(self, options: dict[str, Any]) -> None:
        generation = request_reload()
        self.say(f"Every process reloads the allow-list (generation {generation}).")

    verbosity = 1

    def say(self, message: str) -> None:
        """A report of what was done: not at ``-v 0`` (what was asked for is written directly)."""
        if self.verbosity > 0:
            self.stdout.write(message)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        self.verbosity = int(options.get("verbosity", 1))
        handler = getattr(self, "do_" + action.replace("-", "_"))
        # A progress bar on standard error, for import, export and import-settings on a terminal.
        stream = getattr(self.stderr, "_out", self.stderr)
        quiet = options.get("quiet", True) or options.get("verbosity") == 0
        with progress.shown(stream, progress.wanted(stream, quiet)):
            if preview_cli.previewed(options):  # --dry-run, or asked first (preview_cli)
                preview_cli.run(self, options, lambda: handler(options))
            else:
                handler(options)

    # --- helpers -----------------------------------------------------------

    def acting_user(self, options: dict[str, Any]) -> Any:
        name = options.get("user")
        if not name:
            return None
        User = get_user_model()
        try:
            return User._default_manager.get_by_natural_key(name)
        except User.DoesNotExist:
            raise bad_input(f"There is no user named '{name}'.") from None

    def warn(self, warnings: list[str]) -> None:
        """Allowed but risky (the API's "warnings"): one line each on standard error."""
        for warning in warnings:
            self.stderr.write(f"Warning: {warning}", style_func=self.style.WARNING)

    def not_recorded(self, user: Any) -> None:
        if user is None:
            self.say(f"(acting OS user: {os_user()}; give --user NAME to record it in the admin history)")

    def find(self, options: dict[str, Any]) -> AllowedOrigin:
        try:
            text = canonical_origin(options["origin"])
        except DjangoValidationError as exc:
            raise bad_input(f"origin: {exc.messages[0]}") from None
        name = options["policy"]
        policy = Policy.objects.filter(name=name).first()
        if policy is None:
            raise bad_input(f"policy: There is no policy named '{name}'.")
        entry = AllowedOrigin.objects.filter(policy=policy, origin=text).first()
        if entry is None:
            raise bad_input(f"{text} is not listed in policy '{name}'.")
        return entry

    # --- actions -------------------------------------------------------------

    def do_list(self, options: dict[str, Any]) -> None:
        entries = with_usage(AllowedOrigin.objects.select_related("policy", "created_by")).order_by(
            "policy__name", "origin"
        )
        if options.get("unused_days") is not None:
            entries = entries.filter(unused(self.days(options["unused_days"])))
        if options["policy"]:
            if not Policy.objects.filter(name=options["policy"]).exists():
                raise bad_input(f"policy: There is no policy named '{options['policy']}'.")
            entries = entries.filter(policy__name=options["policy"])
        if options["json"]:
            self.stdout.write(json.dumps([origin_record(entry) for entry in entries], indent=2))
            return
        rows = [("ID", "POLICY", "ORIGIN", "STATUS", "EXPIRES", "SCOPES", "HITS", "LAST_SEEN", "NOTE")]
        for e in entries:
            rows.append(
                (
                    str(e.pk),
                    e.policy.name,
                    e.origin,
                    entry_status(e, translate=False),  # the admin's and the API's words
                    e.expires_at.isoformat() if e.expires_at else "-",
                    ",".join(e.scopes) or "-",
                    str(e.hits),  # with_usage
                    e.last_seen.isoformat(timespec="seconds") if e.last_seen else "-",
                    e.note.replace("\n", " ")[:60],
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
        self.stdout.write(f"{len(rows) - 1} origin(s)")

    @staticmethod
    def days(text: str) -> int:
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_DAYS):
            raise bad_input(f"--unused-days: {DAYS_MESSAGE}")
        return int(text)

    def do_add(self, options: dict[str, Any]) -> None:
        user = self.acting_user(options)
        note = options["note"]
        if user is None:
            mark = f"added with manage.py cors by OS user {os_user()}"
            note = f"{note} ({mark})" if note else mark[0].upper() + mark[1:]
        name = options["policy"]
        policy = Policy.objects.filter(name=name).first()
        if policy is None:
            raise bad_input(f"policy: There is no policy named '{name}'.")
        effect = options.get("effect") or AllowedOrigin.ALLOW
        if options.get("deny"):
            if options.get("effect") not in (None, AllowedOrigin.DENY):
                raise bad_input(f"effect: --deny and --effect {options['effect']} contradict each other.")
            effect = AllowedOrigin.DENY
        scopes = cli.scope_flags(options["scopes"], options["csrf_trusted"])
        entry = AllowedOrigin(
            effect=effect,
            origin=options["origin"],
            policy=policy,
            note=note,
            **scopes,
            enabled=not options["disabled"],
            expires_at=expiry(options["expires"]),
            created_by=user if history.user_id(user) is not None else None,
        )
        cli.add(entry, user)
        what = "an exception (deny) for " if entry.is_deny else ""
        # What the options set, beside the defaults: the message says all that was done.
        details = [f"id {entry.pk}"]
        if not entry.enabled:
            details.append(_("disabled"))
        if entry.expires_at:
            details.append(_("expires %(when)s") % {"when": history.text(entry.expires_at)})
        if entry.csrf_trusted:
            details.append(_("CSRF-trusted"))
        if entry.websocket or not entry.cors:
            details.append(_("scopes %(scopes)s") % {"scopes": ", ".join(entry.scopes)})
        self.say(f"Added {what}{entry.origin} to policy '{entry.policy.name}' ({', '.join(details)}).")
        self.warn([*entry.warnings(), *write_warnings(entry)])
        self.not_recorded(user)

    def widening(self, entry: AllowedOrigin) -> list[str]:
        """What removing or disabling this exception (deny entry) will allow: an explicit act
        by its origin proceeds, and says so on standard error."""
        from ...widening import messages, openings

        if not entry.is_deny:
            return []
        return messages(openings([entry])[1])

    def do_remove(self, options: dict[str, Any]) -> None:
        user = self.acting_user(options)
        entry = self.find(options)
        opened = self.widening(entry)
        cli.remove(entry, user)
        self.say(f"Removed {entry.origin} from policy '{entry.policy.name}'.")
        self.warn(opened)
        self.not_recorded(user)

    def do_enable(self, options: dict[str, Any], enabled: bool = True) -> None:
        user = self.acting_user(options)
        entry = self.find(options)
        word = "enabled" if enabled else "disabled"
        if entry.enabled == enabled:
            self.say(f"{entry.origin} in policy '{entry.policy.name}' is already {word}.")
            return
        opened = [] if enabled else self.widening(entry)
        cli.change(entry, {"enabled": enabled}, user)
        self.say(f"{word.capitalize()} {entry.origin} in policy '{entry.policy.name}'.")
        self.warn([*entry.warnings(), *write_warnings(entry)] if enabled else opened)
        self.not_recorded(user)

    def do_disable(self, options: dict[str, Any]) -> None:
        self.do_enable(options, enabled=False)

    def do_check(self, options: dict[str, Any]) -> None:
        check_cli.run(self, options, QuietExit)

    def do_import(self, options: dict[str, Any]) -> None:
        document_cli.run_import(self, options)

    def do_policy(self, options: dict[str, Any]) -> None:
        policy_cli.run(self, options)

    def do_status(self, options: dict[str, Any]) -> None:
        stale = status_cli.run(self, options)
        if stale:
            raise (QuietExit if options["json"] else CommandError)(stale, returncode=status_cli.STALE)

    def do_token(self, options: dict[str, Any]) -> None:
        token_cli.run(self, options)

    def do_probe(self, options: dict[str, Any]) -> None:
        failed = probe_cli.run(self, options)
        if failed:
            raise (QuietExit if options["json"] else CommandError)(failed, returncode=probe_cli.FAILED)

    def do_export(self, options: dict[str, Any]) -> None:
        document_cli.run_export(self, options)

    def do_import_settings(self, options: dict[str, Any]) -> None:
        document_cli.run_import_settings(self, options)


def expiry(text: str | None) -> datetime | None:
    """``--expires``: an ISO 8601 date-time (in the current time zone when it names none)."""
    if not text:
        return None
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise bad_input(
            f"expires_at: Datetime has wrong format: {text!r}. Give an ISO 8601 date-time, "
            "e.g. 2030-01-31T12:00:00Z."
        )
    return timezone.make_aware(value) if settings.USE_TZ and timezone.is_naive(value) else value
