from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path

from corsadmin.cross_origin import cross_origin_exempt


def token(request):
    return JsonResponse({"token": get_token(request)})


def protected(request):
    return HttpResponse("changed", status=201)


urlpatterns = [
    path("token/", token),
    path("protected/", protected),
    path("exempt/", cross_origin_exempt(protected)),
    path("api/protected/", protected),
]
