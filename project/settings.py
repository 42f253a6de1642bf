"""Settings of the host site that demonstrates corsadmin.

Embedded defaults (SQLite, local-memory cache); DATABASE_URL and REDIS_URL
switch to real services.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CORSADMIN_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsadmin",
    "project",
]

MIDDLEWARE = [
    "corsadmin.middleware.CorsMiddleware",
    "project.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "corsadmin.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Django's security.W003 looks for its own CsrfViewMiddleware by name and does not see
# corsadmin's subclass above; corsadmin.W007 takes its place (warns when neither is there).
SILENCED_SYSTEM_CHECKS = ["security.W003"]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

_SQLITE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# Persistent connections (seconds; 0, the default, closes each at the end of its request),
# checked before reuse.
_CONN_MAX_AGE = int(os.environ.get("DATABASE_CONN_MAX_AGE", "0"))
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or _SQLITE_URL,
        conn_max_age=_CONN_MAX_AGE,
        conn_health_checks=_CONN_MAX_AGE > 0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that hangs must not hold a worker: give up connecting after 2 s, notice a
    # dead peer within 10 s (keepalives, tcp_user_timeout), end a statement after 30 s. What
    # DATABASE_URL says (e.g. ?connect_timeout=5) wins. corsadmin's own views also cut any
    # query after CORSADMIN["SERVICE_TIMEOUT"] (corsadmin.deadlines).
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": 2,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": 10000,
        "options": "-c statement_timeout=30s",
        **DATABASES["default"].get("OPTIONS", {}),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write to one file: wait for locks, and use WAL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "corsadmin-site"),
            # A Redis that hangs must not hang requests: fail fast, corsadmin falls back to the database.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CORSADMIN: dict[str, object] = {
    "REFRESH_INTERVAL": float(os.environ.get("CORSADMIN_REFRESH_INTERVAL", "1")),
    # API imports naming more origins answer 202 and run in the background.
    "IMPORT_JOB_ORIGINS": int(os.environ.get("CORSADMIN_IMPORT_JOB_ORIGINS", "10000")),
    # Prometheus metrics at /metrics/ (project/urls.py). Under gunicorn -w N, set
    # PROMETHEUS_MULTIPROC_DIR to an empty directory (README, "Metrics").
    "METRICS": True,
    # Each full load of the allow-list is written here once, and a new process (a restart, a
    # worker gunicorn respawns) starts from it and catches up: seconds faster at 1,000,000
    # origins, and its tables are shared between processes (corsadmin.snapshot_file).
    "SNAPSHOT_DIR": str(VAR_DIR / "snapshots"),
}

# The REST API at /api/cors/ (corsadmin.api) names its own authentication and permissions.
# The site's choices: throttling and the error pages.
REST_FRAMEWORK = {
    # corsadmin's throttles: requests per user (per client address when anonymous) and minute,
    # counted in the cache CORSADMIN["CACHE_ALIAS"] names; a 429 with Retry-After beyond.
    "DEFAULT_THROTTLE_CLASSES": [
        "corsadmin.api.throttles.UserThrottle",
        "corsadmin.api.throttles.AnonThrottle",
    ],
    # None: no limit.
    "DEFAULT_THROTTLE_RATES": {
        "corsadmin_user": "10000/minute",
        "corsadmin_anon": "120/minute",
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "corsadmin API",
    "DESCRIPTION": "Manage the database-held CORS allow-list: policies, allowed origins, "
    "checks, export and import.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No spec validator badge: Swagger UI would send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"fields": {"()": "corsadmin.logging.DefaultFields"}},
    "formatters": {
        "corsadmin": {
            "format": "%(levelname)s %(name)s event=%(event)s generation=%(generation)s %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["fields"], "formatter": "corsadmin"},
    },
    "loggers": {"corsadmin": {"handlers": ["console"], "level": "INFO"}},
}
