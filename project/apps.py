import os

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "corsadmin demo site"

    def ready(self) -> None:
        from . import views

        if os.environ.get(views.DEBUG_STATS) == "1":
            views.install_query_counter()
