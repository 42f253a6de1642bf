"""Helpers for the real-browser tests (tests/test_browser.py): the site, a front-end, Chromium."""
