from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class CorsAdminConfig(AppConfig):
    name = "corsadmin"
    verbose_name = _("CORS")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from . import checks, db_errors, heartbeat, metrics, refresh, usage  # noqa: F401  (checks; receivers)

        metrics.configure()  # CORSADMIN["METRICS"]: the middleware's one flag
        usage.configure()  # CORSADMIN["USAGE"]: likewise

        # "Check an origin" on the admin home, unless the site has its own index page (or no
        # admin: the bench site, an API-only host).
        if apps.is_installed("django.contrib.admin") and admin.site.index_template is None:
            admin.site.index_template = "admin/corsadmin/index.html"
