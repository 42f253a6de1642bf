"""Small helpers shared by the core test modules."""

from __future__ import annotations

from typing import Any

APP = "https://app.example.com"
ECHO = "/demo/echo/"

DEFAULT_METHODS = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
DEFAULT_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"


def cors_headers(response: Any) -> dict[str, str]:
    """Every ``Access-Control-*`` header of a response, by its canonical name."""
    return {
        name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")
    }


def vary(response: Any) -> list[str]:
    """The field names listed in a response's ``Vary`` header."""
    if not response.has_header("Vary"):
        return []
    return [item.strip() for item in response["Vary"].split(",") if item.strip()]
