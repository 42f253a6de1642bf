"""The app's configuration: its name in the admin, and what it connects when Django is ready."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CorsAdminConfig(AppConfig):
    name = "corsadmin"
    verbose_name = _("CORS")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (  # noqa: F401  (checks; receivers)
            checks,
            cross_origin,
            db_errors,
            heartbeat,
            metrics,
            refresh,
            telemetry,
            traffic,
            usage,
        )

        metrics.configure()  # CORSADMIN["METRICS"]: the middleware's one flag
        usage.configure()  # CORSADMIN["USAGE"]: likewise
        telemetry.configure()  # CORSADMIN["TELEMETRY"] and its limits: read once, not per refusal
        traffic.configure()  # CORSADMIN["TRAFFIC"] and its bound
