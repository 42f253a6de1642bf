"""``manage.py cors check ORIGIN [--path P] [--method M] [--credentials [MODE]] [--url U] [--json]``.

What the admin's check page and ``/api/cors/check/`` answer (:func:`corsadmin.browser_check.check`):
the middleware's decision, explained, each engine's verdict, and the fix for a refusal. Exit 0
allowed, 1 refused, 2 bad input (one line).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from .. import browser_check
from ..console_messages import Unreadable
from ..errors import one_line
from ..fields import Refusal, check
from ..records import CHECK_QUERY_AFTER, check_query_fields
from .cli import REFUSED, bad_input


def add_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="explain the decision for an origin (exit 0 allowed, 1 refused)",
        description="Ask the allow-list what the middleware answers. Exit 0 allowed, 1 refused.",
    )
    p.add_argument("origin", help="the Origin header, byte for byte")
    p.add_argument("--path", default="/", help="request path (default /)")
    p.add_argument("--method", default="GET", help="request method (default GET)")
    p.add_argument("--request-method", help="with --method OPTIONS: ask about a preflight for this method")
    p.add_argument("--request-headers", help="comma-separated request header names")
    p.add_argument("--private-network", action="store_true", help="a private-network request")
    p.add_argument("--host", help="the request's Host, for policies limited to hosts (e.g. api.example.com)")
    p.add_argument(
        "--credentials",
        nargs="?",
        const="include",
        default="same-origin",
        metavar="include|same-origin|omit",
        help="the fetch's credentials mode (default same-origin; the bare flag: include)",
    )
    p.add_argument("--url", help="the URL the page fetches (fills --path and --host)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")


def run(command: Any, options: dict[str, Any], quiet_exit: type[CommandError]) -> None:
    """Answer the question; exit 1 (``REFUSED``) when refused, 2 on bad input."""
    query = {
        "origin": options["origin"],
        "path": options["path"],
        "method": options["method"],
        "private_network": options["private_network"],
        "credentials": options["credentials"],
    }
    for name in ("request_method", "request_headers", "host", "url"):
        if options.get(name) is not None:
            query[name] = options[name]
    try:
        question = check(check_query_fields(), query, after=CHECK_QUERY_AFTER)
        if "url" in question:
            given = {k: v for k, v in question.items() if k != "path" or options["path"] != "/"}
            question = {**question, **browser_check.question_from_url(given)}
    except Refusal as exc:
        raise bad_input(one_line(exc.detail)) from None
    except (Unreadable, ValidationError) as exc:
        raise bad_input(f"url: {exc.messages[0] if isinstance(exc, ValidationError) else exc}") from None
    result = browser_check.check(**question)
    if options["json"]:
        command.stdout.write(json.dumps(result, indent=2))
        if not result["allowed"]:
            raise quiet_exit(f"refused: {result['reason']}", returncode=REFUSED)
        return
    print_decision(command, result)
    if not result["allowed"]:
        raise CommandError(f"refused: {result['reason']}", returncode=REFUSED)


def print_decision(command: Any, result: dict[str, Any]) -> None:
    def show(label: str, value: object) -> None:
        command.stdout.write(f"{label + ':':<10}{value}")

    show("origin", result["origin"])
    show("path", result["path"])
    show("method", result["method"])
    show("allowed", "yes" if result["allowed"] else "no")
    show("policy", result["policy"] or "-")
    exception = " (exception: deny)" if result["effect"] == "deny" else ""
    show("matched", (result["matched"] or "-") + exception)
    if result["host"]:
        show("host", result["host"])
    if result["would_refuse"]:
        show("report", "would be refused by report-only " + ", ".join(result["would_refuse"]))
    show("reason", result["reason"])
    command.stdout.write("headers:" + ("" if result["headers"] else "  (none)"))
    for name, value in result["headers"].items():
        command.stdout.write(f"  {name}: {value}")
    preflight = result["preflight"]
    if preflight:
        command.stdout.write(
            f"preflight: {'passes' if preflight['allowed'] else 'fails'}"
            + ("" if preflight["headers"] else "  (no headers)")
        )
        for name, value in preflight["headers"].items():
            command.stdout.write(f"  {name}: {value}")
    if result["status"]:
        show("status", f"{result['status']} (Django refuses the host)")
    show("creds", result["credentials"])
    for engine, verdict in result["engines"].items():
        show(
            engine, ("allowed" if verdict["allowed"] else "refused: " + verdict["message"].replace("\n", " "))
        )
        for warning in verdict["warnings"]:
            command.stdout.write(f"  warning: {warning}")
    for step in result["fix"]:
        show("fix", step["text"])
