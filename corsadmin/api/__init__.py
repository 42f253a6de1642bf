"""The REST API: ``path("api/cors/", include("corsadmin.api.urls"))``."""
