"""corsadmin's settings, read at call time so ``override_settings`` just works."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "REFRESH_INTERVAL": 1.0,
    "CACHE_ALIAS": "default",
    # "background": a thread per process keeps the snapshot fresh; requests never wait for it.
    # "inline": the request that finds the snapshot due refreshes it (for tests, whose data
    # lives in a transaction no other thread can see).
    "REFRESH": "background",
    # How long the first requests of a process wait for its first snapshot before refusing
    # CORS (only the CORS_* settings policy applies) until it loads.
    "FIRST_LOAD_TIMEOUT": 5.0,
    # Seconds a process may serve a snapshot the database has not confirmed (None: no limit).
    # Past it the process answers as a cold start does: only the CORS_* settings policy. Keep it
    # above DATABASE_CHECK_EVERY * REFRESH_INTERVAL + SERVICE_TIMEOUT (how often it is confirmed).
    "MAX_STALENESS": None,
    # The refresher's limit on any one call to the database or the cache (connect, statement, read).
    "SERVICE_TIMEOUT": 2.0,
    # Read the database's generation at least every this many intervals, even when the cache
    # says nothing moved (a publish lost to a cache failure heals within that time).
    "DATABASE_CHECK_EVERY": 3,
    # A directory of this host (None: off) where the process that completes a full load of the
    # allow-list writes it (corsadmin.snapshot_file), for new processes to start from instead of
    # reading every row; they catch up from its generation as any refresh does.
    "SNAPSHOT_DIR": None,
    # With SNAPSHOT_DIR: snapshot files kept in the database too (corsadmin.snapshot_store), for a
    # host that has none yet (a new machine or deploy directory) to start from instead of a full load.
    "SHARED_SNAPSHOTS": True,
    # Tombstones of deleted rows are kept this many seconds; a process further behind reloads all.
    "CHANGE_LOG_RETENTION": 86400,
    # Refused-origin telemetry: counted in memory, written at most once per interval.
    "TELEMETRY": True,
    "TELEMETRY_INTERVAL": 10.0,
    "TELEMETRY_MAX_ORIGINS": 10000,
    # Refused origins kept in the database (rows in all), seen within the days: per kind the
    # most requested rows, and a tenth of its budget for the most recently seen.
    "REFUSED_MAX_ROWS": 1000,
    # Of REFUSED_MAX_ROWS, the rows kept for report-only policies' would-be refusals; ordinary
    # refusals get the rest. Either kind may use what the other leaves unused.
    "REFUSED_REPORT_ROWS": 500,
    "REFUSED_RETENTION_DAYS": 30,
    # "background": a thread per process writes the counts; "manual": call telemetry.flush().
    "TELEMETRY_FLUSH": "background",
    # Usage per entry and allowed/refused requests per policy: counted in memory, written at
    # most once per interval in hourly buckets kept USAGE_RETENTION_DAYS (the overview's
    # 30-day charts need 30).
    "USAGE": True,
    "USAGE_INTERVAL": 10.0,
    "USAGE_RETENTION_DAYS": 35,
    # "background": a thread per process writes the counts; "manual": call usage.flush().
    "USAGE_FLUSH": "background",
    # Requests per concrete origin, path prefix and host per day (corsadmin.traffic, for
    # previews): written with usage, kept USAGE_RETENTION_DAYS; at most TRAFFIC_MAX_KEYS keys
    # per day in each process's memory and TRAFFIC_MAX_ROWS rows in the table.
    "TRAFFIC": True,
    "TRAFFIC_MAX_KEYS": 10000,
    "TRAFFIC_MAX_ROWS": 100000,
    # The documented override for the one refused-by-default combination that can be intended.
    "ALLOW_NULL_WITH_CREDENTIALS": False,
    # The admin and corsadmin's API readable cross-origin with credentials (corsadmin.W006).
    "ALLOW_CREDENTIALS_ON_ADMIN": False,
    # Prometheus metrics (corsadmin[metrics]): counted in memory per process, moved into
    # prometheus_client at most once per interval (and before each scrape of the view).
    "METRICS": False,
    "METRICS_INTERVAL": 5.0,
    # "background": a thread per process moves the counts; "manual": call metrics.flush().
    "METRICS_FLUSH": "background",
    # "background": a thread per process writes its heartbeat (``cors status``); "manual":
    # call corsadmin.heartbeat.reporter.flush() (tests).
    "HEARTBEAT_FLUSH": "background",
    # Failed token authentications a client address may make per minute (per process), beyond
    # which the API answers 429 without looking the key up; None: no limit.
    "AUTH_FAILURE_LIMIT": 20,
    # The largest import body the API reads (a 100,000-origin export is about 21 MB).
    "IMPORT_MAX_BYTES": 32 * 1024 * 1024,
    # An API import of a document naming more origins than this answers 202 and runs in the
    # background (corsadmin.import_jobs), polled at /api/cors/imports/<id>/.
    "IMPORT_JOB_ORIGINS": 10_000,
    # Seconds an API import or export may work before it stops, rolls back and answers 503
    # (corsadmin.budget); None: no limit of its own. Under gunicorn's sync worker, the
    # worker's --timeout also limits it when the server's config calls
    # corsadmin.budget.gunicorn_worker (project/gunicorn_conf.py).
    "REQUEST_TIMEOUT": None,
    # The probe (``cors probe``, /api/cors/probe/, the admin's Probe page): the hosts it may
    # reach (Django's ALLOWED_HOSTS patterns; None: ALLOWED_HOSTS itself; '*' never counts),
    # the seconds the whole probe may take, the bytes of each body read, the redirects followed.
    "PROBE_HOSTS": None,
    "PROBE_TIMEOUT": 5.0,
    "PROBE_MAX_BYTES": 65536,
    "PROBE_MAX_REDIRECTS": 3,
    # CrossOriginProtectionMiddleware: paths (regexes, ``re.match`` on ``path_info``) it never
    # refuses, and report-only (log what it would refuse, refuse nothing).
    "CROSS_ORIGIN_EXEMPT_PATHS": (),
    "CROSS_ORIGIN_REPORT_ONLY": False,
}

# The defaults of django-cors-headers, which new policies start from.
DEFAULT_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
DEFAULT_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)
DEFAULT_MAX_AGE = 7200


def get(name: str) -> Any:
    return getattr(settings, "CORSADMIN", {}).get(name, DEFAULTS[name])


def refresh_interval() -> float:
    return float(get("REFRESH_INTERVAL"))


def max_staleness() -> float | None:
    """``MAX_STALENESS`` in seconds; None when off (or not a positive number: check E015 says so)."""
    value = get("MAX_STALENESS")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def cache_alias() -> str:
    return str(get("CACHE_ALIAS"))


# django-cors-headers' settings: (name, old alias, default). Read at call time.
CORS_SETTINGS: dict[str, tuple[str | None, Any]] = {
    "CORS_ALLOWED_ORIGINS": ("CORS_ORIGIN_WHITELIST", ()),
    "CORS_ALLOWED_ORIGIN_REGEXES": ("CORS_ORIGIN_REGEX_WHITELIST", ()),
    "CORS_ALLOW_ALL_ORIGINS": ("CORS_ORIGIN_ALLOW_ALL", False),
    "CORS_URLS_REGEX": (None, r"^.*$"),
    "CORS_ALLOW_METHODS": (None, DEFAULT_METHODS),
    "CORS_ALLOW_HEADERS": (None, DEFAULT_HEADERS),
    "CORS_EXPOSE_HEADERS": (None, ()),
    "CORS_PREFLIGHT_MAX_AGE": (None, 86400),
    "CORS_ALLOW_CREDENTIALS": (None, False),
    "CORS_ALLOW_PRIVATE_NETWORK": (None, False),
}
# The settings that grant origins: with none of them set there is no built-in policy.
GRANTING_SETTINGS = ("CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGIN_REGEXES", "CORS_ALLOW_ALL_ORIGINS")


def cors_setting(name: str) -> Any:
    alias, default = CORS_SETTINGS[name]
    if hasattr(settings, name):
        return getattr(settings, name)
    if alias and hasattr(settings, alias):
        return getattr(settings, alias)
    return default


def is_cors_setting_set(name: str) -> bool:
    alias = CORS_SETTINGS[name][0]
    return hasattr(settings, name) or bool(alias and hasattr(settings, alias))


def has_settings_policy() -> bool:
    return any(is_cors_setting_set(name) for name in GRANTING_SETTINGS)
