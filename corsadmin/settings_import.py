"""``manage.py cors import-settings``: copy django-cors-headers' settings into the database."""

from __future__ import annotations

import dataclasses
from io import TextIOBase
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from . import conf, progress, shadowing, writes
from .history import changed_fields, field_values, log_addition, log_change
from .models import AllowedOrigin, Policy
from .origins import canonical_origin

# Policy field <- setting
POLICY_FIELDS = {
    "url_regex": "CORS_URLS_REGEX",
    "allow_all_origins": "CORS_ALLOW_ALL_ORIGINS",
    "allow_credentials": "CORS_ALLOW_CREDENTIALS",
    "allow_methods": "CORS_ALLOW_METHODS",
    "allow_headers": "CORS_ALLOW_HEADERS",
    "expose_headers": "CORS_EXPOSE_HEADERS",
    "max_age": "CORS_PREFLIGHT_MAX_AGE",
    "allow_private_network": "CORS_ALLOW_PRIVATE_NETWORK",
}


class ImportProblem(Exception):
    pass


def _policy_values() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, setting in POLICY_FIELDS.items():
        value = conf.cors_setting(setting)
        if field == "url_regex":
            value = getattr(value, "pattern", value)
        elif field in ("allow_methods", "allow_headers", "expose_headers"):
            value = list(value)
        values[field] = value
    return values


@dataclasses.dataclass
class Plan:
    changes: dict[str, Any]  # policy field -> new value
    to_add: list[str]  # canonical origins to add
    skipped: list[str]  # what cannot be imported, in words
    removable: list[str] = dataclasses.field(default_factory=list)  # settings (as spelled) that may go
    keep_only: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # setting -> the values to keep
    keep_together: list[str] = dataclasses.field(default_factory=list)  # settings that stay, and why
    why: str = ""


def plan(policy_name: str) -> Plan:
    """What the import changes, and which settings may then go without changing any response."""
    values = _policy_values()
    policy = Policy.objects.filter(name=policy_name).first()
    candidate = Policy(name=policy_name, **values)
    try:
        candidate.full_clean(exclude=["name"], validate_unique=False)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            reasons = [
                f"{POLICY_FIELDS.get(field, field)}: {message}"
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
        else:
            reasons = exc.messages
        raise ImportProblem(
            f"The CORS_* settings cannot become policy '{policy_name}', nothing changed: "
            + "; ".join(reasons).replace("\n", " ")
        ) from None
    changes = {
        field: getattr(candidate, field)
        for field in values
        if policy is None or getattr(policy, field) != getattr(candidate, field)
    }
    existing = set(policy.origins.values_list("origin", flat=True)) if policy else set()
    to_add: list[str] = []
    skipped: list[str] = []
    not_imported: list[str] = []
    for text in conf.cors_setting("CORS_ALLOWED_ORIGINS"):
        try:
            origin = canonical_origin(text)
        except ValidationError as exc:
            skipped.append(f"{text!r} ({exc.messages[0]})")
            not_imported.append(text)
            continue
        if origin not in existing and origin not in to_add:
            to_add.append(origin)
    regexes = list(conf.cors_setting("CORS_ALLOWED_ORIGIN_REGEXES"))
    for pattern in regexes:
        skipped.append(f"regex {getattr(pattern, 'pattern', pattern)!r} (regexes stay in settings)")
    result = Plan(changes, to_add, skipped)
    _advise(result, not_imported, bool(regexes))
    return result


def _advise(result: Plan, not_imported: list[str], regexes: bool) -> None:
    """Sort the settings that are set into those that may go and those that must stay.

    With allow-all imported, the origin lists decide nothing. Otherwise regexes and
    origins that are not entries keep the built-in ``(settings)`` policy alive, tried
    before the database policies: every setting shaping its answers must stay with them,
    or the origins only it allows would be answered with defaults on every path.
    """
    allow_all = conf.cors_setting("CORS_ALLOW_ALL_ORIGINS") is True
    settings_policy_stays = not allow_all and bool(not_imported or regexes)
    receivers = any(signal.has_listeners() for signal in _signals())
    for name in conf.CORS_SETTINGS:
        names = _spellings(name)
        if not names:
            continue
        if name == "CORS_ALLOWED_ORIGINS" and not allow_all and not_imported:
            result.keep_only[names[0]] = not_imported
            result.removable += names[1:]
        elif _stays(name, settings_policy_stays, receivers):
            result.keep_together.append(names[0])
            result.removable += names[1:]
        else:
            result.removable += names
    reasons = []
    if settings_policy_stays:
        kept = [f"{names[0]} {values!r}" for names, values in _kept_values(not_imported, regexes)]
        reasons.append(
            f"{' and '.join(kept)} cannot become entries, so the built-in (settings) policy stays. It is "
            f"tried before the database policies of priority 0 or less and answers the origins it "
            "allows with the options of the settings kept with it: without one of them, those origins "
            "would get the defaults (and, without CORS_URLS_REGEX, on every path). Once they are "
            "replaced by entries (a wildcard such as https://*.example.com), remove all of these "
            "settings together"
        )
    if receivers:
        reasons.append(
            "a check_request_enabled receiver is connected: the requests it enables are answered "
            "with the options of these settings"
        )
    result.why = ". ".join(reasons) + "."


def _stays(name: str, settings_policy_stays: bool, receivers: bool) -> bool:
    """Whether a setting other than the exact origins must stay: the regexes with the
    settings policy, its options with it or with a connected receiver."""
    if name == "CORS_ALLOWED_ORIGIN_REGEXES":
        return settings_policy_stays and bool(conf.cors_setting(name))
    return name in shadowing.SHAPING_SETTINGS and (settings_policy_stays or receivers)


def _kept_values(not_imported: list[str], regexes: bool) -> list[tuple[list[str], list[Any]]]:
    kept = []
    if not_imported:
        kept.append((_spellings("CORS_ALLOWED_ORIGINS"), not_imported))
    if regexes:
        patterns = [getattr(p, "pattern", p) for p in conf.cors_setting("CORS_ALLOWED_ORIGIN_REGEXES")]
        kept.append((_spellings("CORS_ALLOWED_ORIGIN_REGEXES"), patterns))
    return kept


def _spellings(name: str) -> list[str]:
    """The names under which a ``CORS_*`` setting is set: its own first, then its old alias."""
    alias = conf.CORS_SETTINGS[name][0]
    return [n for n in (name, alias) if n and hasattr(settings, n)]


def _signals() -> list[Any]:
    from .signals import check_request_enabled

    signals = [check_request_enabled]
    try:
        from corsheaders.signals import check_request_enabled as corsheaders_signal
    except ImportError:
        pass
    else:
        signals.append(corsheaders_signal)
    return signals


def run(
    stdout: TextIO | TextIOBase, dry_run: bool = False, policy_name: str = "default", user: Any = None
) -> int:
    """Import, print what was (or would be) done; returns the number of changes."""
    if not conf.has_settings_policy():
        stdout.write(
            "No CORS_ALLOWED_ORIGINS, CORS_ALLOWED_ORIGIN_REGEXES or CORS_ALLOW_ALL_ORIGINS setting: "
            "nothing to import.\n"
        )
        return 0
    with transaction.atomic() if dry_run else writes.writing():
        result = plan(policy_name)
        verb = "would" if dry_run else "will"
        for name, value in result.changes.items():
            stdout.write(f"policy {policy_name}: {verb} set {name} = {value!r}\n")
        for origin in result.to_add:
            stdout.write(f"policy {policy_name}: {verb} add {origin}\n")
        for item in result.skipped:
            stdout.write(f"not imported: {item}\n")
        if not result.changes and not result.to_add:
            stdout.write("Nothing to change: the database already has these settings.\n")
        if not dry_run:
            _apply(policy_name, result.changes, result.to_add, user)
    _write_advice(stdout, result, dry_run, policy_name)
    return len(result.changes) + len(result.to_add)


def _write_advice(stdout: TextIO | TextIOBase, result: Plan, dry_run: bool, policy_name: str) -> None:
    if dry_run:
        stdout.write("Dry run: nothing changed.\n")
        if result.removable:
            stdout.write(
                "After the import, these settings could be removed from settings.py: "
                + ", ".join(result.removable)
                + "\n"
            )
    elif result.removable:
        stdout.write(
            "Imported. These settings are now in the database and can be removed from settings.py: "
            + ", ".join(result.removable)
            + "\n"
        )
    for name, values in result.keep_only.items():
        stdout.write(f"Keep in settings.py, only: {name} = {values!r}\n")
    if result.keep_together:
        together = ", together" if len(result.keep_together) > 1 else ""
        stdout.write(f"Keep in settings.py{together}: {', '.join(result.keep_together)}\n")
    if result.keep_only or result.keep_together:
        stdout.write(f"  {result.why}\n")
        stdout.write(
            f"  `manage.py check --database default` warns (corsadmin.W009) if the settings left "
            f"answer in place of policy {policy_name!r} or another database policy.\n"
        )


def _apply(policy_name: str, changes: dict[str, Any], to_add: list[str], user: Any) -> None:
    """Write the plan, recorded in the admin history as the API and the CLI record theirs."""
    policy = Policy.objects.filter(name=policy_name).first()
    if policy is None:
        policy = Policy.objects.create(name=policy_name, **changes)
        log_addition(user, [policy])
    elif changes:
        before = field_values(policy)
        for field, value in changes.items():
            setattr(policy, field, value)
        policy.save()
        log_change(user, policy, before, changed_fields(before, policy))
    progress.stage("adding", total=len(to_add))
    created = []
    for origin in to_add:
        created.append(
            AllowedOrigin.objects.create(
                policy=policy, origin=origin, created_by=user, note="imported from CORS_* settings"
            )
        )
        progress.advance()
    progress.done()
    log_addition(user, created)
