"""A host site without ``django.contrib.admin``: API and middleware only (issue 19, item 7)."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django.contrib.admin"]  # noqa: F405
ROOT_URLCONF = "tests.noadmin.urls"
DEBUG = False
