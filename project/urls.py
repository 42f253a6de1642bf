from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/cors/", include("corsadmin.api.urls")),
    # Prometheus metrics (CORSADMIN["METRICS"]), for a user with corsadmin.view_policy: a scraper
    # sends "Authorization: Token <key>" (manage.py drf_create_token), an operator uses the admin
    # login. Never readable cross-origin with credentials (corsadmin.protected). README, "Metrics".
    path("metrics/", include("corsadmin.metrics_urls")),
    path("demo/echo/", views.echo, name="demo-echo"),
    path("demo/error/", views.error, name="demo-error"),
]

# An exception in a middleware on corsadmin's API paths: JSON, as the API answers (README, "REST API").
handler500 = "corsadmin.api.exceptions.handler500"
