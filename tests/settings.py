from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["*"]

# Tests flush refused-origin telemetry themselves; no background writer thread.
# Likewise the metrics (enabled by the demo site): tests call metrics.flush().
CORSADMIN = {
    **CORSADMIN,  # noqa: F405
    "TELEMETRY_FLUSH": "manual",
    "METRICS_FLUSH": "manual",
    "USAGE_FLUSH": "manual",
    "HEARTBEAT_FLUSH": "manual",
    "REFRESH": "inline",
}
