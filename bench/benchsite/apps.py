from django.apps import AppConfig
from django.conf import settings


class BenchSiteConfig(AppConfig):
    name = "bench.benchsite"
    label = "benchsite"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        if settings.BENCH_SITE["kind"] == "cors-headers+db":
            from corsheaders.signals import check_request_enabled

            from .handlers import cors_allow_mysites

            check_request_enabled.connect(cors_allow_mysites)
