import os

from django.http import JsonResponse
from django.urls import path


def ping(request):  # type: ignore[no-untyped-def]
    response = JsonResponse({"ok": True})
    # Which worker answered: the freshness measurement needs it (same cost on every site).
    response["X-Worker-Pid"] = str(os.getpid())
    return response


urlpatterns = [path("api/ping/", ping)]
