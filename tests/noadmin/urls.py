from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

from project import views

PAGE = "{% load corsadmin_history %}{{ entry|change_values }}"


def page(request: HttpRequest) -> HttpResponse:
    """A template that loads corsadmin's tag library, as the admin's history page does."""
    entry = SimpleNamespace(
        change_message='[{"changed": {"fields": ["Note"], "values": {"Note": ["-", "hi"]}}}]'
    )
    return HttpResponse(engines["django"].from_string(PAGE).render({"entry": entry}))


urlpatterns = [
    path("api/cors/", include("corsadmin.api.urls")),
    path("demo/echo/", views.echo, name="demo-echo"),
    path("page/", page),
]
