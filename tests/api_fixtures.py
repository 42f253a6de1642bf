"""Users, tokens and clients for the API and command-line tests.

The fixtures made of them (``reader``, ``full_client``, ...) are in ``tests/conftest.py``.
"""

from __future__ import annotations

from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

API = "/api/cors/"
MODELS = ("policy", "allowedorigin")


def grant(user: User, *codenames: str) -> User:
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="corsadmin", codename__in=codenames)
    )
    # Permissions are cached on the instance: fetch it again.
    return User.objects.get(pk=user.pk)


def make_user(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw-" + username)
    return grant(user, *codenames)


def token_client(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
