"""The metrics view, for the host's URLconf: ``path("metrics/", include("corsadmin.metrics_urls"))``.

Only for a user with ``corsadmin.view_policy`` (an API token, or a session): README, "Metrics".
A site that guards the path itself (a network rule, its proxy) may route ``corsadmin.metrics.view``.
"""

from django.urls import path

from .api.views import MetricsView

urlpatterns = [path("", MetricsView.as_view(), name="corsadmin-metrics")]
