"""``manage.py cors import-settings``: copy django-cors-headers' settings into the database."""

from __future__ import annotations

from io import TextIOBase
from typing import Any, TextIO

from django.core.exceptions import ValidationError
from django.db import transaction

from . import conf, progress, writes
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


def plan(policy_name: str) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    """(policy field changes, origins to add, what cannot be imported, settings fully imported)."""
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
    for text in conf.cors_setting("CORS_ALLOWED_ORIGINS"):
        try:
            origin = canonical_origin(text)
        except ValidationError as exc:
            skipped.append(f"{text!r} ({exc.messages[0]})")
            continue
        if origin not in existing and origin not in to_add:
            to_add.append(origin)
    for pattern in conf.cors_setting("CORS_ALLOWED_ORIGIN_REGEXES"):
        skipped.append(f"regex {getattr(pattern, 'pattern', pattern)!r} (regexes stay in settings)")
    removable = [name for name in conf.CORS_SETTINGS if conf.is_cors_setting_set(name)]
    if skipped:
        removable = [n for n in removable if n not in ("CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGIN_REGEXES")]
    return changes, to_add, skipped, removable


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
        changes, to_add, skipped, removable = plan(policy_name)
        verb = "would" if dry_run else "will"
        for field, value in changes.items():
            stdout.write(f"policy {policy_name}: {verb} set {field} = {value!r}\n")
        for origin in to_add:
            stdout.write(f"policy {policy_name}: {verb} add {origin}\n")
        for item in skipped:
            stdout.write(f"not imported: {item}\n")
        if not changes and not to_add:
            stdout.write("Nothing to change: the database already has these settings.\n")
        if not dry_run:
            _apply(policy_name, changes, to_add, user)
    if dry_run:
        stdout.write("Dry run: nothing changed.\n")
    elif removable:
        stdout.write(
            "Imported. These settings are now in the database and can be removed from settings.py: "
            + ", ".join(removable)
            + "\n"
        )
    return len(changes) + len(to_add)


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
