from django.apps import AppConfig


class CorsAdminConfig(AppConfig):
    name = "corsadmin"
    verbose_name = "CORS"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, refresh  # noqa: F401  (system checks; the refresh layer's receivers)
