"""System checks (``manage.py check``): settings that would break CORS or open a hole."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from numbers import Real
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from . import conf
from .extras import check_api_installed  # noqa: F401  (registered: corsadmin.E017)
from .probe_settings import check_probe_settings  # noqa: F401  (registered: corsadmin.E020, W016)
from .settings_policy import compile_origin_regex

OUR_MIDDLEWARE = "corsadmin.middleware.CorsMiddleware"
CORSHEADERS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"
# Middleware that may answer a request itself, before the CORS middleware could add headers.
ANSWERING_MIDDLEWARE = (
    "django.middleware.common.CommonMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",
    "django.middleware.cache.CacheMiddleware",
    "django.middleware.gzip.GZipMiddleware",
)


def _is_str_sequence(value: object) -> bool:
    return (
        isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value)
    )


def _setting_name(name: str) -> str:
    alias = conf.CORS_SETTINGS[name][0]
    if alias and not hasattr(settings, name) and hasattr(settings, alias):
        return alias
    return name


@register(Tags.security)
def check_settings_types(**kwargs: object) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("CORS_ALLOW_HEADERS", "CORS_ALLOW_METHODS", "CORS_EXPOSE_HEADERS"):
        if not _is_str_sequence(conf.cors_setting(name)):
            errors.append(Error(f"{name} should be a sequence of strings.", id="corsadmin.E001"))
    for name in ("CORS_ALLOW_CREDENTIALS", "CORS_ALLOW_PRIVATE_NETWORK", "CORS_ALLOW_ALL_ORIGINS"):
        if not isinstance(conf.cors_setting(name), bool):
            errors.append(Error(f"{_setting_name(name)} should be a bool.", id="corsadmin.E002"))
    max_age = conf.cors_setting("CORS_PREFLIGHT_MAX_AGE")
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        errors.append(Error("CORS_PREFLIGHT_MAX_AGE should be an integer >= 0.", id="corsadmin.E003"))
    urls_regex = conf.cors_setting("CORS_URLS_REGEX")
    if not isinstance(urls_regex, (str, re.Pattern)):
        errors.append(Error("CORS_URLS_REGEX should be a string or regex pattern.", id="corsadmin.E004"))
    errors += _check_origins()
    errors += _check_regexes()
    errors += _check_corsadmin_settings()
    return errors


def _check_origins() -> list[CheckMessage]:
    name = _setting_name("CORS_ALLOWED_ORIGINS")
    origins = conf.cors_setting("CORS_ALLOWED_ORIGINS")
    if not _is_str_sequence(origins):
        return [Error(f"{name} should be a sequence of strings.", id="corsadmin.E005")]
    errors: list[CheckMessage] = []
    for origin in origins:
        if origin == "null":
            continue
        url = urlsplit(origin)
        if url.scheme == "" or (url.netloc == "" and url.scheme != "file"):
            errors.append(
                Error(
                    f"Origin {origin!r} in {name} is missing scheme or netloc.",
                    id="corsadmin.E006",
                    hint="Add a scheme (e.g. https://) or netloc (e.g. example.com).",
                )
            )
        elif any((url.path, url.query, url.fragment)):
            errors.append(
                Error(
                    f"Origin {origin!r} in {name} should not have path, query or fragment.",
                    id="corsadmin.E007",
                    hint=f"Write it as {url.scheme}://{url.netloc}.",
                )
            )
    return errors


def _check_regexes() -> list[CheckMessage]:
    name = _setting_name("CORS_ALLOWED_ORIGIN_REGEXES")
    regexes = conf.cors_setting("CORS_ALLOWED_ORIGIN_REGEXES")
    if (
        not isinstance(regexes, Sequence)
        or isinstance(regexes, str)
        or not all(isinstance(r, (str, re.Pattern)) for r in regexes)
    ):
        return [
            Error(f"{name} should be a sequence of strings and/or compiled regexes.", id="corsadmin.E008")
        ]
    messages: list[CheckMessage] = []
    for pattern in regexes:
        text = getattr(pattern, "pattern", pattern)
        try:
            compiled = compile_origin_regex(pattern)
        except re.error as exc:
            messages.append(Error(f"{text!r} in {name} is not a valid regex: {exc}.", id="corsadmin.E009"))
            continue
        if isinstance(compiled, re.Pattern):
            messages.append(
                Warning(
                    f"{text!r} in {name} runs in Python's backtracking regex engine, not RE2.",
                    hint="Rewrite it without backreferences, lookarounds or flags, so a crafted Origin "
                    "cannot make it take exponential time.",
                    id="corsadmin.W005",
                )
            )
    return messages


def _check_corsadmin_settings() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if conf.get("ALLOW_CREDENTIALS_ON_ADMIN"):
        errors.append(
            Warning(
                "CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] is True: every origin a credentials policy "
                "allows can read the admin and corsadmin's API with the user's cookies (and write, if "
                "the entry is CSRF-trusted).",
                hint="Remove the setting unless another site really must use the admin or this API "
                "as the logged-in user.",
                id="corsadmin.W006",
            )
        )
    interval = conf.get("REFRESH_INTERVAL")
    if not isinstance(interval, Real) or isinstance(interval, bool) or interval <= 0:
        errors.append(
            Error("CORSADMIN['REFRESH_INTERVAL'] should be a number of seconds > 0.", id="corsadmin.E010")
        )
    if conf.cache_alias() not in settings.CACHES:
        errors.append(
            Error(f"CORSADMIN['CACHE_ALIAS'] {conf.cache_alias()!r} is not in CACHES.", id="corsadmin.E011")
        )
    timeout = conf.get("REQUEST_TIMEOUT")
    if timeout is not None and (not isinstance(timeout, Real) or isinstance(timeout, bool) or timeout <= 0):
        errors.append(
            Error(
                "CORSADMIN['REQUEST_TIMEOUT'] should be a number of seconds > 0, or None (no limit).",
                id="corsadmin.E016",
            )
        )
    origins = conf.get("IMPORT_JOB_ORIGINS")
    if not isinstance(origins, int) or isinstance(origins, bool) or origins < 0:
        errors.append(
            Error(
                "CORSADMIN['IMPORT_JOB_ORIGINS'] should be a whole number of origins >= 0 "
                "(0: every API import naming an origin runs in the background).",
                id="corsadmin.E018",
            )
        )
    return errors + _check_max_staleness()


def _check_max_staleness() -> list[CheckMessage]:
    value = conf.get("MAX_STALENESS")
    if value is None:
        return []
    limit = conf.max_staleness()
    if limit is None:
        return [
            Error(
                "CORSADMIN['MAX_STALENESS'] should be a number of seconds > 0, or None (off).",
                id="corsadmin.E015",
            )
        ]
    try:
        period = float(conf.get("DATABASE_CHECK_EVERY")) * conf.refresh_interval()
        period += float(conf.get("SERVICE_TIMEOUT"))
    except (TypeError, ValueError):
        return []
    if limit > period:
        return []
    return [
        Warning(
            f"CORSADMIN['MAX_STALENESS'] ({limit:g} s) is not above how often a healthy process "
            f"confirms its allow-list against the database (up to {period:g} s: DATABASE_CHECK_EVERY "
            "x REFRESH_INTERVAL + SERVICE_TIMEOUT): processes would refuse CORS now and then.",
            hint="Raise MAX_STALENESS (e.g. to a minute), or lower DATABASE_CHECK_EVERY.",
            id="corsadmin.W010",
        )
    ]


@register(Tags.security)
def check_credentials(**kwargs: object) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not conf.cors_setting("CORS_ALLOW_CREDENTIALS") or not conf.has_settings_policy():
        return messages
    if conf.cors_setting("CORS_ALLOW_ALL_ORIGINS") is True:
        messages.append(
            Error(
                "CORS_ALLOW_ALL_ORIGINS with CORS_ALLOW_CREDENTIALS lets every site read your users' "
                "logged-in data.",
                hint="List the origins in CORS_ALLOWED_ORIGINS (or in the database) instead.",
                id="corsadmin.E012",
            )
        )
    if getattr(settings, "SESSION_COOKIE_SAMESITE", "Lax") != "None":
        messages.append(
            Warning(
                "CORS_ALLOW_CREDENTIALS is on but SESSION_COOKIE_SAMESITE is not 'None': browsers will "
                "not send the session cookie on cross-site requests.",
                hint="Set SESSION_COOKIE_SAMESITE = 'None' and SESSION_COOKIE_SECURE = True if the "
                "cross-site client must be logged in.",
                id="corsadmin.W003",
            )
        )
    origins = conf.cors_setting("CORS_ALLOWED_ORIGINS")
    insecure = (
        [o for o in origins if isinstance(o, str) and o.startswith("http://")]
        if _is_str_sequence(origins)
        else []
    )
    if insecure:
        messages.append(
            Warning(
                f"CORS_ALLOW_CREDENTIALS is on and these origins are plain http://: {', '.join(insecure)}. "
                "Anyone on the network path can impersonate them.",
                hint="Use https:// origins for credentialed requests.",
                id="corsadmin.W004",
            )
        )
    return messages


@register(Tags.security)
def check_middleware(**kwargs: object) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    messages: list[CheckMessage] = []
    if OUR_MIDDLEWARE in middleware and CORSHEADERS_MIDDLEWARE in middleware:
        messages.append(
            Error(
                "Both corsheaders.middleware.CorsMiddleware and corsadmin.middleware.CorsMiddleware are "
                "installed; they would both add CORS headers.",
                hint="Remove corsheaders.middleware.CorsMiddleware from MIDDLEWARE.",
                id="corsadmin.E013",
            )
        )
    if OUR_MIDDLEWARE in middleware:
        position = middleware.index(OUR_MIDDLEWARE)
        before = [m for m in middleware[:position] if m in ANSWERING_MIDDLEWARE]
        if before:
            messages.append(
                Warning(
                    f"{OUR_MIDDLEWARE} comes after {', '.join(before)}, which can answer a request "
                    "before it, so those responses carry no CORS headers.",
                    hint=f"Move {OUR_MIDDLEWARE} above them, as high in MIDDLEWARE as possible.",
                    id="corsadmin.W002",
                )
            )
    if (
        "django.middleware.csrf.CsrfViewMiddleware" in middleware
        and "corsadmin.middleware.CsrfViewMiddleware" in middleware
    ):
        messages.append(
            Error(
                "Both Django's and corsadmin's CsrfViewMiddleware are installed.",
                hint="Keep only corsadmin.middleware.CsrfViewMiddleware.",
                id="corsadmin.E014",
            )
        )
    return messages


DJANGO_CSRF = "django.middleware.csrf.CsrfViewMiddleware"
OUR_CSRF = "corsadmin.middleware.CsrfViewMiddleware"


@register(Tags.security, deploy=True)
def check_csrf_middleware(**kwargs: object) -> list[CheckMessage]:
    """Django's security.W003 in a form that knows corsadmin's CSRF middleware: silence
    security.W003 (SILENCED_SYSTEM_CHECKS) when using ours, and this one still warns."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if DJANGO_CSRF in middleware or OUR_CSRF in middleware:
        return []
    return [
        Warning(
            "Neither Django's nor corsadmin's CsrfViewMiddleware is in MIDDLEWARE: no CSRF protection.",
            hint=f"Add {OUR_CSRF} (or {DJANGO_CSRF}) to MIDDLEWARE.",
            id="corsadmin.W007",
        )
    ]


@register(Tags.database)
def check_policy_hosts(databases: Collection[str] | None = None, **kwargs: object) -> list[CheckMessage]:
    """A policy's exact host that ALLOWED_HOSTS refuses: requests for it are answered by the
    host-less policies only, so the policy never applies there (``check --database default``)."""
    if not databases or "default" not in databases:
        return []
    from django.conf import settings
    from django.db import DatabaseError
    from django.http.request import validate_host

    from .models import Policy

    allowed = list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    try:
        rows = list(Policy.objects.exclude(hosts=[]).values_list("name", "hosts"))
    except DatabaseError:
        return []
    messages: list[CheckMessage] = []
    for name, hosts in rows:
        for host in hosts if isinstance(hosts, list) else ():
            if isinstance(host, str) and not host.startswith("*.") and not validate_host(host, allowed):
                messages.append(
                    Warning(
                        f"Policy {name!r} lists the host {host!r}, which ALLOWED_HOSTS does not allow: "
                        "the policy never applies to it.",
                        hint=f"Add {host!r} to ALLOWED_HOSTS, or remove it from the policy's hosts.",
                        id="corsadmin.W008",
                    )
                )
    return messages


@register(Tags.security, Tags.database)
def check_shared_hosting_wildcards(
    databases: Collection[str] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """Wildcard allow entries on a shared hosting platform (``https://*.glitch.me``): any
    stranger's page there is allowed (``check --database default``). One on a credentials
    policy (stored before the rule, or around validation) is named as not honoured."""
    if not databases or "default" not in databases:
        return []
    from django.db import DatabaseError

    from .models import AllowedOrigin, shared_hosting_wildcards

    try:
        rows = list(
            AllowedOrigin.objects.filter(effect=AllowedOrigin.ALLOW, enabled=True, origin__contains="*.")
            .order_by("policy__name", "origin")
            .values_list("origin", "policy__name", "policy__allow_credentials")
        )
    except DatabaseError:
        return []
    messages: list[CheckMessage] = []
    for origin, policy, credentials in rows:
        for text, platform in shared_hosting_wildcards([origin]):
            own = f"https://yourapp.{platform}"
            if credentials:  # stored before the rule or around validation: the loader ignores it
                messages.append(
                    Warning(
                        f"Policy {policy!r} lists {text!r}, but allows credentials: a wildcard on "
                        f"{platform}, a shared hosting platform where anyone can publish, is not honoured "
                        "there (no page is allowed by it).",
                        hint=f"Delete it, and list the hosts you own (e.g. {own}).",
                        id="corsadmin.W015",
                    )
                )
                continue
            messages.append(
                Warning(
                    f"Policy {policy!r} allows {text!r}: every page on {platform}, a shared hosting "
                    "platform where anyone can publish, may read its responses.",
                    hint=f"List the hosts you own (e.g. {own}) instead of the wildcard.",
                    id="corsadmin.W015",
                )
            )
    return messages


@register(Tags.database)
def check_settings_policy_shadows(
    databases: Collection[str] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """The ``(settings)`` policy answering in a database policy's place with other options
    (``check --database default``): what a migration half done leaves behind."""
    if not databases or "default" not in databases or not conf.has_settings_policy():
        return []
    from django.db import DatabaseError
    from django.db.models import Exists, OuterRef

    from . import shadowing
    from .models import AllowedOrigin, Policy

    fields = ("name", "priority", "mode", "enabled", "url_regex", "allow_all_origins", "allowing")
    allow_entries = AllowedOrigin.objects.filter(
        policy=OuterRef("pk"), enabled=True, effect=AllowedOrigin.ALLOW
    )
    try:
        policies = Policy.objects.annotate(allowing=Exists(allow_entries))
        rows = list(policies.values(*fields, *shadowing.SHAPING_SETTINGS.values()))
    except DatabaseError:
        return []
    setting_of = {field: setting for setting, field in shadowing.SHAPING_SETTINGS.items()}
    setting_of["allow_all_origins"] = "CORS_ALLOW_ALL_ORIGINS"
    messages: list[CheckMessage] = []
    for shadow in shadowing.shadowed(rows):
        names = ", ".join(shadowing.spelled(setting_of[field]) for field in shadow.differences)
        messages.append(
            Warning(
                f"The CORS_* settings policy is tried before policy {shadow.policy!r} on the paths both "
                f"cover, with other values of {names}: the origins the settings allow get the "
                f"settings' answer there, never {shadow.policy!r}'s (nor its deny entries).",
                hint=f"Give {names} the values of policy {shadow.policy!r} (as `cors import-settings` "
                "advises), or move the origins out of the settings and remove them, or give "
                f"{shadow.policy!r} a priority above 0.",
                id="corsadmin.W009",
            )
        )
    return messages


@register(Tags.database)
def check_skipped_rows(databases: Collection[str] | None = None, **kwargs: object) -> list[CheckMessage]:
    """Stored rows the allow-list leaves out because they cannot be compiled (written around
    validation: raw SQL, an old release): the snapshot every process builds, built here
    (``check --database default``)."""
    if not databases or "default" not in databases:
        return []
    from django.db import DatabaseError

    from .loader import SnapshotBuilder

    try:
        skipped = SnapshotBuilder().load().skipped
    except DatabaseError:
        return []
    return [
        Warning(
            f"The {row.label} (id {row.row_id}) is left out of the CORS allow-list: it cannot be "
            f"compiled ({row.reason}).",
            hint="Fix it (the admin or the API validate it) or delete it.",
            id="corsadmin.W011",
        )
        for row in skipped
    ]
