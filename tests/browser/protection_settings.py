"""The demo site with CrossOriginProtectionMiddleware (tests/test_browser_cross_origin.py)."""

from project.settings import *  # noqa: F403

MIDDLEWARE = [*MIDDLEWARE, "corsadmin.middleware.CrossOriginProtectionMiddleware"]  # noqa: F405
