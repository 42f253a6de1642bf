"""``manage.py cors token create|list|revoke``: origin leases' tokens from the command line.

``create`` prints the key on its last line (shown once: only a digest is stored). Bad input
exits 2 with one line and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from .. import leases
from ..errors import model_errors, one_line
from ..lease_patterns import duration_text, parse_duration
from ..models import LeaseToken, Policy
from .cli import bad_input


def add_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "token",
        help="create, list or revoke origin leases (scoped API tokens for preview deployments)",
        description="Manage origin leases: API tokens that may only add and remove entries "
        "matching a pattern in one policy, each expiring at most --max-ttl ahead.",
    )
    actions = p.add_subparsers(dest="token_action", required=True, metavar="TOKEN_ACTION")
    q = actions.add_parser("create", help="create a lease; its key is printed once, on the last line")
    q.add_argument("name", help="the lease's name (a slug), e.g. ci-previews")
    q.add_argument("--policy", required=True, help="the policy it adds entries to")
    q.add_argument(
        "--pattern", required=True, help="the origins it may add, e.g. 'https://pr-*.preview.example.com'"
    )
    q.add_argument(
        "--max-ttl", required=True, help="the longest lifetime of an entry: 7d, 12h, 30m or seconds"
    )
    q.add_argument("--user", help="the Django user to record the creation under")
    q = actions.add_parser("list", help="list leases (never their keys)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q = actions.add_parser("revoke", help="revoke a lease: its key is refused from then on")
    q.add_argument("name", help="the lease's name")
    q.add_argument("--user", help="the Django user to record the change under")


def run(command: Any, options: dict[str, Any]) -> None:
    {"create": create, "list": listing, "revoke": revoke}[options["token_action"]](command, options)


def create(command: Any, options: dict[str, Any]) -> None:
    user = command.acting_user(options)
    try:
        max_ttl = parse_duration(options["max_ttl"])
    except ValidationError as exc:
        raise bad_input(f"max_ttl: {exc.messages[0]}") from None
    policy = Policy.objects.filter(name=options["policy"]).first()
    if policy is None:
        raise bad_input(f"policy: There is no policy named '{options['policy']}'.")
    if LeaseToken.objects.filter(name=options["name"]).exists():
        raise bad_input(f"name: There is already a lease named '{options['name']}'.")
    try:
        lease, key = leases.create(options["name"], policy, options["pattern"], max_ttl, user)
    except ValidationError as exc:
        raise bad_input(one_line(model_errors(exc, None))) from None
    command.say(
        f"Created lease {lease.name}: origins matching {lease.pattern} in policy {policy.name}, "
        f"each for at most {lease.max_ttl_text}. The key is shown only now:"
    )
    command.stdout.write(key)


def record(lease: LeaseToken) -> dict[str, Any]:
    return {
        "name": lease.name,
        "policy": lease.policy.name,
        "pattern": lease.pattern,
        "max_ttl": lease.max_ttl,
        "key_starts_with": lease.key_hint,
        "created_by": lease.created_by.get_username() if lease.created_by else None,
        "created_at": lease.created_at.isoformat(),
        "revoked_at": lease.revoked_at.isoformat() if lease.revoked_at else None,
    }


def listing(command: Any, options: dict[str, Any]) -> None:
    rows = [record(lease) for lease in LeaseToken.objects.select_related("policy", "created_by")]
    if options.get("json"):
        command.stdout.write(json.dumps(rows, indent=2))
        return
    table = [("NAME", "POLICY", "PATTERN", "MAX TTL", "KEY", "STATUS")]
    for row in rows:
        status = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        table.append(
            (
                row["name"],
                row["policy"],
                row["pattern"],
                duration_text(row["max_ttl"]),
                row["key_starts_with"] + "…",
                status,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        command.stdout.write("  ".join(cells).rstrip())


def revoke(command: Any, options: dict[str, Any]) -> None:
    user = command.acting_user(options)
    lease = LeaseToken.objects.filter(name=options["name"]).first()
    if lease is None:
        raise bad_input(f"There is no lease named '{options['name']}'.")
    if leases.revoke(lease, user):
        command.say(f"Revoked lease {lease.name}: its key is refused from now on.")
    else:
        command.say(f"Lease {lease.name} was already revoked.")
