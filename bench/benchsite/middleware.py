from collections.abc import Callable
from typing import Any


class NoopMiddleware:
    """A pass-through middleware: the floor of any middleware's cost."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


class PreflightStub:
    """Answers every request at once with an empty 200, as a CORS middleware answers a
    preflight: the floor a preflight's cost is measured from."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.http import HttpResponse

        response = HttpResponse()
        response["Content-Length"] = "0"
        return response
