"""URLs of the REST API; the host site mounts them, e.g. at ``api/cors/``."""

from __future__ import annotations

from typing import Any

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from . import probing, status, views

app_name = "corsadmin-api"

EXTRA_ROOT_LINKS = {
    "check": "check",
    "probe": "probe",
    "export": "export",
    "import": "import",
    "blocked": "blocked",
    "status": "status",
    "schema": "schema",
    "docs": "docs",
}


class Router(DefaultRouter):
    """The default router, whose root page also links the non-model endpoints."""

    APIRootView = views.RootView

    def get_api_root_view(self, api_urls: Any = None) -> Any:
        api_root_dict = {
            prefix: self.routes[0].name.format(basename=basename) for prefix, _, basename in self.registry
        }
        api_root_dict.update(EXTRA_ROOT_LINKS)
        return self.APIRootView.as_view(api_root_dict=api_root_dict)


router = Router()
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("origins", views.OriginViewSet, basename="origin")

urlpatterns = [
    path("check/", views.CheckView.as_view(), name="check"),
    path("probe/", probing.ProbeView.as_view(), name="probe"),
    path("export/", views.ExportView.as_view(), name="export"),
    path("import/", views.ImportView.as_view(), name="import"),
    # Any segment: one that is no job id is a JSON 404 from the view.
    re_path(r"^imports/(?P<pk>[^/]+)/\Z", views.ImportJobView.as_view(), name="import-job"),
    path("blocked/", views.BlockedView.as_view(), name="blocked"),
    path("status/", status.StatusView.as_view(), name="status"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="corsadmin-api:schema"), name="docs"),
    path(
        "redoc/",
        views.RedocView.as_view(url_name="corsadmin-api:schema", template_name="corsadmin/api/redoc.html"),
        name="redoc",
    ),
    *router.urls,
    re_path(r"^[\s\S]*/\Z", views.NotFoundView.as_view()),  # any path, one with a newline too
]
