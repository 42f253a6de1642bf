"""Demo endpoints: a cross-origin client can call these to see corsadmin at work."""

import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    """Any method: describe the request back as JSON."""
    response = JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "query": request.GET.dict(),
            "origin": request.headers.get("Origin"),
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8", "replace")[:10000],
        }
    )
    response["X-Request-Id"] = str(uuid.uuid4())
    return response


def error(request: HttpRequest) -> JsonResponse:
    """Always fails, so a 500 shows that errors carry CORS headers too."""
    raise RuntimeError("demo error: this endpoint always fails")
