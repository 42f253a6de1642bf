"""The core's field rules and records (no DRF) answer as the REST API's serializers do.

The import document, ``cors policy``, ``cors check`` and ``--json`` read and show policies and
origins without the REST framework (``corsadmin.fields``, ``corsadmin.records``); the API keeps
its DRF serializers. Each input here goes through both: the same values, or the same errors in
the same structure and words.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from rest_framework import serializers

from corsadmin.api.answers import CheckQuerySerializer, OriginDocumentSerializer, PolicyDocumentSerializer
from corsadmin.api.serializers import OriginSerializer, PolicySerializer
from corsadmin.fields import Refusal, check
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.records import (
    CHECK_QUERY_AFTER,
    check_query_fields,
    origin_fields,
    origin_record,
    policy_fields,
    policy_record,
)

LONG = "x" * 600
POLICY_INPUTS = [
    {"name": "api"},
    {},
    {"name": ""},
    {"name": "   "},
    {"name": " api "},
    {"name": "bad name"},
    {"name": 12},
    {"name": None},
    {"name": "a" * 65},
    {"name": "a\x00b"},
    {"name": "a\ud800b"},
    {"name": ["api"]},
    {"name": "x", "url_regex": "^/("},
    {"name": "x", "url_regex": "^/" + LONG},
    {"name": "x", "url_regex": ""},
    {"name": "x", "url_regex": 5},
    {"name": "x", "hosts": "a.example.com"},
    {"name": "x", "hosts": {"a": 1}},
    {"name": "x", "hosts": 7},
    {"name": "x", "hosts": ["a.example.com", None, "", " ", 5, "h" * 256]},
    {"name": "x", "hosts": ["h"] * 101},
    {"name": "x", "mode": "audit"},
    {"name": "x", "mode": "report"},
    {"name": "x", "mode": ""},
    {"name": "x", "mode": True},
    {"name": "x", "mode": None},
    {"name": "x", "allow_credentials": "true"},
    {"name": "x", "allow_credentials": 1},
    {"name": "x", "allow_credentials": None},
    {"name": "x", "enabled": False, "allow_all_origins": True},
    {"name": "x", "allow_methods": "GET"},
    {"name": "x", "allow_methods": ["GET", " post ", "", None, 3, "m" * 129]},
    {"name": "x", "allow_methods": ["GET"] * 101},
    {"name": "x", "allow_headers": [], "expose_headers": [" "]},
    {"name": "x", "max_age": -1},
    {"name": "x", "max_age": 2**31},
    {"name": "x", "max_age": "12"},
    {"name": "x", "max_age": True},
    {"name": "x", "max_age": 12.0},
    {"name": "x", "max_age": 12.5},
    {"name": "x", "max_age": [1]},
    {"name": "x", "max_age": None},
    {"name": "x", "priority": -(2**31) - 1},
    {"name": "x", "priority": 2**31 - 1},
    {"name": "x", "note": ""},
    {"name": "x", "note": "n" * 2001},
    {"name": "x", "note": "  spaced  "},
    {"name": "x", "note": None},
    {"name": "x", "created_at": "not read", "unknown": 1},
]
ORIGIN_INPUTS = [
    {"origin": "https://a.example.com"},
    {},
    {"origin": ""},
    {"origin": " https://a.example.com "},
    {"origin": "o" * 301},
    {"origin": "https://a\x00.example"},
    {"origin": 5},
    {"origin": None},
    {"origin": "x", "enabled": "yes"},
    {"origin": "x", "csrf_trusted": None},
    {"origin": "x", "effect": "block"},
    {"origin": "x", "effect": "deny"},
    {"origin": "x", "note": "n" * 2001},
    {"origin": "x", "expires_at": None},
    {"origin": "x", "expires_at": "2031-05-06T07:08:09Z"},
    {"origin": "x", "expires_at": "2031-05-06T07:08:09+02:00"},
    {"origin": "x", "expires_at": "2031-05-06T07:08"},
    {"origin": "x", "expires_at": "2031-05-06"},
    {"origin": "x", "expires_at": "2031-13-06T07:08:09Z"},
    {"origin": "x", "expires_at": "tomorrow"},
    {"origin": "x", "expires_at": 1700000000},
    {"origin": "x", "expires_at": ""},
    {"origin": "x", "id": 3, "hits": 5, "policy": "default"},
]


def drf(serializer: serializers.Serializer, data, **kwargs):
    try:
        return "ok", dict(serializer.run_validation(data))
    except serializers.ValidationError as exc:
        return "refused", serializers.as_serializer_error(exc)


def core(fields, data, **kwargs):
    try:
        return "ok", check(fields, data, **kwargs)
    except Refusal as exc:
        return "refused", exc.detail


def plain(value):
    """DRF's ErrorDetail and lazy strings as str, keys as str."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, str):
        return str(value)
    return value


@pytest.mark.parametrize("data", POLICY_INPUTS)
def test_a_document_policy_is_checked_as_the_api_checks_it(data):
    assert plain(core(policy_fields(), data)) == plain(drf(PolicyDocumentSerializer(), data))


@pytest.mark.parametrize("data", ORIGIN_INPUTS)
def test_a_document_origin_is_checked_as_the_api_checks_it(data):
    assert plain(core(origin_fields(), data)) == plain(drf(OriginDocumentSerializer(), data))


@pytest.mark.django_db
@pytest.mark.parametrize("data", [d for d in POLICY_INPUTS if "name" in d and d["name"] != "api"])
def test_a_new_policy_takes_the_boolean_defaults_as_the_api_does(data):
    serializer = PolicySerializer()
    serializer.clean_with_model = False
    assert plain(core(policy_fields(defaults=True), data)) == plain(drf(serializer, data))


CHECK_INPUTS = [
    {"origin": "https://a.example.com"},
    {},
    {"origin": ""},
    {"origin": "o" * 2049},
    {"origin": "x", "path": "api"},
    {"origin": "x", "path": "/" + "p" * 4096},
    {"origin": "x", "method": "put"},
    {"origin": "x", "method": "P U T"},
    {"origin": "x", "method": "OPTIONS", "request_method": "delete"},
    {"origin": "x", "request_headers": ""},
    {"origin": "x", "request_headers": "x-a, x-b"},
    {"origin": "x", "private_network": True},
    {"origin": "x", "host": "API.example.com:8000"},
    {"origin": "x", "host": "*.example.com"},
    {"origin": "x", "host": "bad host"},
    {"origin": "x", "host": ""},
]


@pytest.mark.parametrize("data", CHECK_INPUTS)
def test_cors_check_reads_its_question_as_the_api_does(data):
    ours = core(check_query_fields(), data, after=CHECK_QUERY_AFTER)
    assert plain(ours) == plain(drf(CheckQuerySerializer(), data))


@pytest.mark.django_db
def test_records_are_what_the_api_shows(django_user_model):
    user = django_user_model.objects.create_user("operator")
    policy = Policy.objects.create(
        name="api",
        url_regex="^/api/",
        hosts=["api.example.com"],
        allow_credentials=True,
        allow_methods=["GET"],
        note="n",
    )
    entries = [
        AllowedOrigin.objects.create(origin="http://plain.example.com", policy=policy, created_by=user),
        AllowedOrigin.objects.create(
            origin="https://*.example.org",
            policy=policy,
            expires_at=datetime(2031, 5, 6, 7, 8, 9, 120, tzinfo=UTC),
        ),
        AllowedOrigin.objects.create(
            origin="https://no.example.org", policy=policy, effect="deny", enabled=False
        ),
    ]
    for p in Policy.objects.all():
        assert policy_record(p) == PolicySerializer(p).data
    for entry in AllowedOrigin.objects.select_related("policy", "created_by"):
        assert origin_record(entry) == OriginSerializer(entry).data
    assert len(entries) == 3


@pytest.mark.parametrize(
    "data", [{}, {"name": "bad name", "max_age": "1", "hosts": "x", "mode": "m", "note": None}]
)
def test_in_german_too(data):
    """DRF's words come from DRF's catalogue where it is installed, for the core's checks as for the API."""
    from django.utils import translation

    with translation.override("de"):
        ours, theirs = plain(core(policy_fields(), data)), plain(drf(PolicyDocumentSerializer(), data))
    assert ours == theirs
    assert "Dieses Feld" in json.dumps(ours, ensure_ascii=False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "expires_at", ["31/01/2031 12:30", "2031-01-31T12:30:00Z", "2031-01-31 12:30", "tomorrow", None]
)
def test_drf_s_date_time_settings_are_followed_too(settings, expires_at):
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DATETIME_FORMAT": "%Y-%m-%d %H:%M",
        "DATETIME_INPUT_FORMATS": ["%d/%m/%Y %H:%M", "iso-8601"],
        "NON_FIELD_ERRORS_KEY": "errors",
    }
    data = {"origin": "https://a.example.com", "expires_at": expires_at}
    assert plain(core(origin_fields(), data)) == plain(drf(OriginDocumentSerializer(), data))
    assert plain(core(origin_fields(), [])) == plain(drf(OriginDocumentSerializer(), []))
    entry = AllowedOrigin.objects.create(
        origin="https://a.example.com",
        policy=Policy.objects.get(name="default"),
        expires_at=datetime(2031, 1, 31, 12, 30, tzinfo=UTC),
    )
    assert origin_record(entry) == OriginSerializer(entry).data
