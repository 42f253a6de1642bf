"""The metrics view, for the host's URLconf: ``path("metrics/", include("corsadmin.metrics_urls"))``."""

from django.urls import path

from .metrics import view

urlpatterns = [path("", view, name="corsadmin-metrics")]
