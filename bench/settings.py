"""Settings of one benchmark site, described by the BENCH_SITE environment variable.

BENCH_SITE is JSON: {"name", "kind", "n", "list", "db"}. Every site has the same
apps, URLconf, view and the middleware stack of ``django-admin startproject``; only
the CORS middleware in front of it (and its configuration) differs:

- ``bare``: none; ``noop``: a pass-through middleware;
- ``cors-headers``: django-cors-headers, ``list`` "exact" (CORS_ALLOWED_ORIGINS) or
  "regex" (CORS_ALLOWED_ORIGIN_REGEXES) of ``n`` entries;
- ``cors-headers+db``: django-cors-headers with no origins in settings and the
  README's ``check_request_enabled`` handler querying ``benchsite.MySite``;
- ``corsadmin``: corsadmin's middleware, ``n`` entries of kind ``list`` in the database.
"""

import json
import os

from bench import origins

SITE = json.loads(os.environ["BENCH_SITE"])
BENCH_SITE = SITE

SECRET_KEY = "bench-not-secret-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "corsheaders",
    "corsadmin",
    "bench.benchsite",
]

STACK = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
FRONT = {
    "bare": [],
    "noop": ["bench.benchsite.middleware.NoopMiddleware"],
    "cors-headers": ["corsheaders.middleware.CorsMiddleware"],
    "cors-headers+db": ["corsheaders.middleware.CorsMiddleware"],
    "corsadmin": ["corsadmin.middleware.CorsMiddleware"],
}[SITE["kind"]]
MIDDLEWARE = FRONT + STACK

ROOT_URLCONF = "bench.benchsite.views"
WSGI_APPLICATION = "bench.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SITE["db"],
        # WAL is set once in the file when it is built (so gunicorn workers read while
        # another process writes); CONN_MAX_AGE is Django's default 0.
        "OPTIONS": {"timeout": 20},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CORSADMIN = {"REFRESH_INTERVAL": float(SITE.get("refresh", 1.0))}
CORSADMIN.update(SITE.get("corsadmin", {}))

if SITE["kind"] == "cors-headers":
    if SITE["list"] == "exact":
        CORS_ALLOWED_ORIGINS = origins.exact(SITE["n"])
    else:
        CORS_ALLOWED_ORIGIN_REGEXES = origins.regexes(SITE["n"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
