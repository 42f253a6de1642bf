"""When the built-in ``(settings)`` policy answers in a database policy's place.

The settings policy has priority 0 and is tried before every database policy of priority
0 or less (its name sorts first). Where both cover a path, an origin the ``CORS_*``
settings allow is answered with the settings' options, never the database policy's:
its credentials, methods, headers, max-age and deny entries do not apply to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import conf

# The settings that shape the answers of the settings policy (not which origins it allows),
# with the policy field each one became in ``import-settings``.
SHAPING_SETTINGS = {
    "CORS_URLS_REGEX": "url_regex",
    "CORS_ALLOW_METHODS": "allow_methods",
    "CORS_ALLOW_HEADERS": "allow_headers",
    "CORS_EXPOSE_HEADERS": "expose_headers",
    "CORS_PREFLIGHT_MAX_AGE": "max_age",
    "CORS_ALLOW_CREDENTIALS": "allow_credentials",
    "CORS_ALLOW_PRIVATE_NETWORK": "allow_private_network",
}
_META = set(".^$*+?{}[]|()\\")


@dataclass(frozen=True)
class Shadow:
    policy: str
    differences: tuple[str, ...]  # the policy fields whose values differ, or ("allow_all_origins",)


def spelled(name: str) -> str:
    """The name under which a ``CORS_*`` setting is set: its own, or its old alias."""
    from django.conf import settings

    alias = conf.CORS_SETTINGS[name][0]
    if alias and not hasattr(settings, name) and hasattr(settings, alias):
        return alias
    return name


def settings_options() -> dict[str, Any]:
    """The settings policy's options, as a policy's fields (header names in lower case,
    methods in upper case, as a policy stores them)."""
    values: dict[str, Any] = {}
    for setting, field in SHAPING_SETTINGS.items():
        value = conf.cors_setting(setting)
        if field == "url_regex":
            value = getattr(value, "pattern", value)
        elif field == "allow_methods":
            value = _tokens(value, upper=True)
        elif field in ("allow_headers", "expose_headers"):
            value = _tokens(value, upper=False)
        values[field] = value
    return values


def _tokens(values: Iterable[Any], upper: bool) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        token = str(value).strip()
        token = token.upper() if upper else token.lower()
        if token not in cleaned:
            cleaned.append(token)
    return cleaned


def literal_start(pattern: str) -> str:
    """The text every match of ``pattern`` (with ``re.match``) begins with, as far as it is literal."""
    text = pattern[1:] if pattern.startswith("^") else pattern
    start = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and not text[i + 1].isalnum():
            start.append(text[i + 1])
            i += 2
            continue
        if char in _META:
            break
        start.append(char)
        i += 1
    # A quantifier applies to the character before it, which is then not certain.
    if i < len(text) and text[i] in "*?{" and start:
        start.pop()
    return "".join(start)


def sample_path(pattern: str) -> str | None:
    """A short path ``pattern`` matches (with ``re.match``), or None if none is found."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # the re module's own parser

        text = _sample(_parser.parse(pattern))
    except Exception:  # noqa: BLE001  (a construct the sampler does not know: no sample)
        return None
    return text if re.match(pattern, text) else None


def _sample(items: Any) -> str:
    out = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name in ("NOT_LITERAL", "ANY"):
            out.append("x" if name == "ANY" or chr(arg) != "x" else "y")
        elif name == "IN":
            out.append(_sample_set(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            out.append(_sample(arg[2]) * arg[0])
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            out.append(_sample(arg[-1] if name == "SUBPATTERN" else arg))
        elif name == "BRANCH":
            out.append(_sample(arg[1][0]))
        elif name not in ("AT", "ASSERT", "ASSERT_NOT"):
            raise ValueError(name)
    return "".join(out)


def _sample_set(items: Any) -> str:
    first_op, first_arg = items[0]
    if str(first_op) == "NEGATE":
        return "x"  # checked by the final match
    if str(first_op) == "LITERAL":
        return chr(first_arg)
    if str(first_op) == "RANGE":
        return chr(first_arg[0])
    return {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " "}.get(str(first_arg), "x")


def paths_overlap(first: str, second: str) -> bool:
    """Whether some path is covered by both regexes. Tried on a path each regex matches
    (``sample_path``), on the paths made from either's literal beginning (``^/api/`` gives
    ``/api/``, ``/api/x``, ``/api/x/``), and on ``/``: enough for the path regexes sites use."""
    try:
        a, b = re.compile(first), re.compile(second)
    except re.error:
        return False
    candidates = {"/", "/x"}
    for pattern in (first, second):
        start = literal_start(pattern)
        candidates.update({start, start + "x", start + "x/", start + "/x"})
        sample = sample_path(pattern)
        if sample is not None:
            candidates.add(sample)
    return any(a.match(path) and b.match(path) for path in candidates)


def differences(options: dict[str, Any], policy: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        field
        for field, value in options.items()
        if field != "url_regex" and _comparable(field, policy[field]) != _comparable(field, value)
    )


def _comparable(field: str, value: Any) -> Any:
    if field in ("allow_methods", "allow_headers", "expose_headers"):
        return tuple(sorted(value))
    return value


def shadowed(policies: Iterable[dict[str, Any]]) -> list[Shadow]:
    """The enabled, enforcing database policies (dicts of their fields, ``name``, ``priority``,
    ``mode`` and ``enabled`` included; ``allowing``: it has an enabled allow entry) that
    allow some origin and that the settings policy answers before, on some path both cover,
    with other options (or for every origin: allow-all)."""
    if not conf.has_settings_policy():
        return []
    options = settings_options()
    allow_all = conf.cors_setting("CORS_ALLOW_ALL_ORIGINS") is True
    found = []
    for policy in policies:
        if not policy["enabled"] or policy["mode"] != "enforce" or policy["priority"] > 0:
            continue
        if not policy["allow_all_origins"] and not policy.get("allowing", True):
            continue  # it allows nothing, so nothing of it is shadowed (the seeded default, empty)
        if not paths_overlap(options["url_regex"], policy["url_regex"]):
            continue
        differing = differences(options, policy)
        if allow_all and not policy["allow_all_origins"]:
            differing = ("allow_all_origins", *differing)
        if differing:
            found.append(Shadow(policy["name"], differing))
    return found
