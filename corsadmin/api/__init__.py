"""The REST API: ``path("api/cors/", include("corsadmin.api.urls"))``, with ``corsadmin[api]``."""

from ..extras import APINotInstalled, api_missing_message, missing_for_api

# Said here, at the first import, so that a URLconf including the API fails with what to install
# rather than a bare ModuleNotFoundError from deep inside a view module.
if _missing := missing_for_api():
    raise APINotInstalled(api_missing_message(_missing))
