"""Users, tokens and clients for the API and command-line tests.

Import the fixtures into a test module: ``from tests.api_fixtures import *``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

API = "/api/cors/"
MODELS = ("policy", "allowedorigin")

__all__ = [
    "API",
    "admin_user_",
    "anon_client",
    "full",
    "full_client",
    "grant",
    "make_user",
    "nobody",
    "nobody_client",
    "reader",
    "reader_client",
    "token_client",
]


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


@pytest.fixture
def admin_user_(db: Any) -> User:
    return User.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def reader(db: Any) -> User:
    return make_user("reader", *(f"view_{m}" for m in MODELS))


@pytest.fixture
def nobody(db: Any) -> User:
    return make_user("nobody")


@pytest.fixture
def full(db: Any) -> User:
    return make_user("operator", *(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS))


@pytest.fixture
def reader_client(reader: User) -> APIClient:
    return token_client(reader)


@pytest.fixture
def nobody_client(nobody: User) -> APIClient:
    return token_client(nobody)


@pytest.fixture
def full_client(full: User) -> APIClient:
    return token_client(full)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
