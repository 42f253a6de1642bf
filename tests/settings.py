from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["*"]
# WhiteNoise looks a static file up when it is asked for, instead of listing STATIC_ROOT (660
# files) each time a test client loads the middleware: that listing was about half of an
# in-process test's time. Served the same way (the servers the production tests start read
# project.settings).
WHITENOISE_AUTOREFRESH = True

# Tests flush refused-origin telemetry themselves; no background writer thread.
# Likewise the metrics (enabled by the demo site): tests call metrics.flush().
CORSADMIN = {
    **CORSADMIN,  # noqa: F405
    "TELEMETRY_FLUSH": "manual",
    "METRICS_FLUSH": "manual",
    "USAGE_FLUSH": "manual",
    "HEARTBEAT_FLUSH": "manual",
    "REFRESH": "inline",
    # No snapshot files between tests (whose rolled-back transactions reuse generation
    # numbers); tests/test_snapshot_file.py turns them on in a directory of its own.
    "SNAPSHOT_DIR": None,
}
