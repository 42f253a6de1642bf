"""corsadmin: a database-managed CORS allow-list for Django."""

__version__ = "0.1.0"
