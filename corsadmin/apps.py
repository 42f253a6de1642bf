from django.apps import AppConfig


class CorsAdminConfig(AppConfig):
    name = "corsadmin"
    verbose_name = "CORS"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401
