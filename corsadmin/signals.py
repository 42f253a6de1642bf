"""corsadmin's signals (and nothing else: safe to import before the app registry is ready)."""

from django.dispatch import Signal

# Sent with ``request=`` for a request the allow-list does not allow. A receiver
# returning True enables CORS for it, with the headers of the CORS_* settings,
# like django-cors-headers' signal of the same name (which is honoured too).
check_request_enabled = Signal()

# Sent after a configuration change commits, with ``generation=`` (the number it
# moved to) and ``using=`` (the database alias).
config_committed = Signal()

# The refresher's reports (``corsadmin.metrics`` listens): ``refreshed`` after each read of
# the database, with ``seconds=`` and ``ok=``; ``service_failed`` with ``service=``
# (database, cache or listener) each time a call to a service fails.
refreshed = Signal()
service_failed = Signal()

# ``row_skipped`` with ``kind=`` ("policy" or "origin") when a snapshot leaves a stored row out
# that it cannot compile (written around validation); once per row and process.
row_skipped = Signal()

# ``cycle_done`` with ``holder=`` at the end of every refresher cycle (heartbeats hook here).
cycle_done = Signal()
