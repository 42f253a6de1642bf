from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/cors/", include("corsadmin.api.urls")),
    # Prometheus metrics (CORSADMIN["METRICS"]); protect it as any scrape target in production.
    path("metrics/", include("corsadmin.metrics_urls")),
    path("demo/echo/", views.echo, name="demo-echo"),
    path("demo/error/", views.error, name="demo-error"),
]
