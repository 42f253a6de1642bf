"""``manage.py cors policy list|add|edit|remove``: policies from the command line.

The API's field rules read the options (the same types and messages: ``records``); the write
is the model's validation and a save recorded in the admin history (``cli``).
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .. import history
from ..errors import model_errors, one_line
from ..fields import Refusal, check
from ..models import Policy
from ..records import policy_fields, policy_record
from . import cli, preview_cli
from .cli import bad_input


# option -> (serializer field, how to read the text)
def LIST(text: str) -> list[str]:  # noqa: N802 (a constant-like reader, as str and int)
    return [item for item in text.replace(",", " ").split() if item]


OPTIONS: dict[str, tuple[str, Any]] = {
    "url_regex": ("url_regex", str),
    "priority": ("priority", int),
    "methods": ("allow_methods", LIST),
    "headers": ("allow_headers", LIST),
    "expose": ("expose_headers", LIST),
    "max_age": ("max_age", int),
    "note": ("note", str),
    "mode": ("mode", str),
    "hosts": ("hosts", LIST),
}
FLAGS = {
    "credentials": "allow_credentials",
    "all_origins": "allow_all_origins",
    "private_network": "allow_private_network",
    "enabled": "enabled",
}


def add_arguments(sub: Any) -> None:
    p = sub.add_parser("policy", help="list, add, edit or remove policies", description="Manage policies.")
    actions = p.add_subparsers(dest="policy_action", required=True, metavar="POLICY_ACTION")
    listing = actions.add_parser("list", help="list policies")
    listing.add_argument("--json", action="store_true", help="print JSON, as the API shows policies")
    for name, help in (("add", "add a policy"), ("edit", "change a policy")):
        q = actions.add_parser(name, help=help, description=help.capitalize() + ".")
        q.add_argument("name", help="the policy's name (a slug)")
        if name == "edit":
            q.add_argument("--rename", help="a new name")
        q.add_argument("--url-regex", help="paths it covers, e.g. ^/api/")
        q.add_argument("--priority", type=int, help="higher is tried first")
        q.add_argument("--methods", help="comma-separated, e.g. GET,POST")
        q.add_argument("--headers", help="comma-separated request header names")
        q.add_argument("--expose", help="comma-separated response header names")
        q.add_argument("--max-age", type=int, help="seconds a browser may cache a preflight")
        q.add_argument("--note", help="a note")
        q.add_argument("--mode", help="enforce (default) or report: report-only never changes a response")
        q.add_argument(
            "--hosts",
            help="comma-separated hosts it applies to, e.g. api.example.com,*.example.org "
            '("" for every host)',
        )
        for flag in FLAGS:
            q.add_argument(f"--{flag.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None)
        q.add_argument("--user", help="the Django user to record the change under")
        preview_cli.add_options(q)
    q = actions.add_parser("remove", help="remove a policy and its origins")
    q.add_argument("name")
    q.add_argument("--user", help="the Django user to record the change under")
    preview_cli.add_options(q)


def data_from(options: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for option, (field, read) in OPTIONS.items():
        if options.get(option) is not None:
            data[field] = read(options[option])
    for flag, field in FLAGS.items():
        if options.get(flag) is not None:
            data[field] = options[flag]
    if options.get("rename"):
        data["name"] = options["rename"]
    return data


def run(command: Any, options: dict[str, Any]) -> None:
    action = options["policy_action"]
    if action == "list":
        policies = Policy.objects.all()
        if options["json"]:
            command.stdout.write(json.dumps([policy_record(p) for p in policies], indent=2))
            return
        for p in policies:
            flags = [
                word
                for on, word in (
                    (p.enabled, "enabled"),
                    (p.allow_credentials, "credentials"),
                    (p.allow_all_origins, "all origins"),
                )
                if on
            ] or ["disabled"]
            if p.mode == Policy.REPORT:
                flags.append("report-only")
            hosts = f"hosts {','.join(p.hosts)}  " if p.hosts else ""
            command.stdout.write(
                f"{p.name}  {p.url_regex}  {hosts}priority {p.priority}  {', '.join(flags)}  "
                f"methods {','.join(p.allow_methods)}  {p.origins.count()} origin(s)"
            )
        command.stdout.write(f"{len(policies)} polic{'y' if len(policies) == 1 else 'ies'}")
        return
    user = command.acting_user(options)
    policy: Policy | None
    if action == "add":
        policy = cli.add(Policy(**checked({"name": options["name"], **data_from(options)})), user)
        given = [field for field in data_from(options) if field not in ("name", "url_regex")]
        values = "; ".join(f"{history.label(Policy, f)}: {history.text(getattr(policy, f))}" for f in given)
        added = f"Added policy '{policy.name}' for {policy.url_regex}"
        command.say(f"{added}: {values}." if values else f"{added}.")
    else:
        policy = Policy.objects.filter(name=options["name"]).first()
        if policy is None:
            raise bad_input(f"policy: There is no policy named '{options['name']}'.")
        if action == "remove":
            count = policy.origins.count()
            cli.remove(policy, user)
            command.say(f"Removed policy '{policy.name}' and its {count} origin(s).")
        else:
            data = data_from(options)
            if not data:
                raise bad_input("Nothing to change: give at least one option (see cors policy edit --help).")
            checked_values = checked(data, policy)
            name, before = policy.name, history.field_values(policy)
            cli.change(policy, checked_values, user)
            command.say(changes(name, before, policy))
    command.not_recorded(user)


def checked(data: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    """The options checked as the API checks a policy's fields (``policy``: an edit, only the
    options given), then by the model's validation; a refusal is bad input."""
    rules = policy_fields(defaults=policy is None)
    errors: dict[str, Any] = {}
    if "name" in data:  # a name in use: the first of its errors, as the API's unique check says it
        try:
            name = rules["name"].run(data["name"])
        except Refusal:
            pass
        else:
            if _taken(name, policy):
                errors["name"] = [unique_name_message()]
    values: dict[str, Any] = {}
    try:
        values = check(rules, data, partial=policy is not None)
    except Refusal as exc:
        assert isinstance(exc.detail, dict)
        for key, detail in exc.detail.items():
            errors[key] = [*errors.get(key, []), *detail]
    if errors:
        raise bad_input(one_line(errors))
    obj = copy.copy(policy) if policy is not None else Policy(**values)
    for key, value in values.items():
        setattr(obj, key, value)
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise bad_input(one_line(model_errors(exc))) from None
    return {key: getattr(obj, key) for key in values}


def unique_name_message() -> str:
    """A name in use, in the API's words (DRF builds them from the model field's so)."""
    field = Policy._meta.get_field("name")
    return str(field.error_messages["unique"]) % {
        "model_name": Policy._meta.verbose_name,
        "field_label": field.verbose_name,
    }


def _taken(name: Any, policy: Policy | None) -> bool:
    others = Policy.objects.filter(name=name)
    return (others.exclude(pk=policy.pk) if policy is not None else others).exists()


def changes(name: str, before: dict[str, Any], policy: Policy) -> str:
    """What an edit changed, old -> new, in the words of the admin history (``Enabled: yes -> no``);
    an option that set a field to the value it had is no change."""
    after = history.field_values(policy)
    changed = [
        (history.label(Policy, field), history.text(before[field]), history.text(after[field]))
        for field in after
        if history.text(before.get(field)) != history.text(after[field])
    ]
    if not changed:
        return _("Policy '%(name)s' unchanged: it already had these values.") % {"name": name}
    values = "; ".join(f"{label}: {old} → {new}" for label, old, new in changed)
    return _("Changed policy '%(name)s': %(values)s.") % {"name": name, "values": values}
