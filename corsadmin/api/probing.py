"""``POST /api/cors/probe/``: the real preflight and request sent to a URL through the edge, each
browser engine's verdict, corsadmin's own decision beside it and the disagreements
(``corsadmin.probe``, ``corsadmin.edge``).

A probe that ran answers 200, whatever the edge did: a timeout, a refused connection or a redirect
the probe may not follow is the ``error`` of that answer (and a ``no-answer`` or
``redirect-refused`` disagreement). Bad input, a host that may not be probed included, is a 400
and sends nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import edge, probe
from ..fields import Refusal
from . import permissions
from .parsers import SafeJSONParser
from .schema import CorsAdminSchema
from .views import CorsAdminAPIView


class ProbeQuerySerializer(serializers.Serializer[dict[str, object]]):
    url = serializers.CharField(
        max_length=probe.MAX_URL_LENGTH,
        trim_whitespace=False,
        help_text="An absolute http:// or https:// URL whose host CORSADMIN['PROBE_HOSTS'] allows "
        "(by default the site's ALLOWED_HOSTS, '*' never counting).",
    )
    origin = serializers.CharField(
        max_length=300, trim_whitespace=False, help_text="The page's origin, as a browser sends it (or null)."
    )
    method = serializers.CharField(
        default="GET", max_length=32, help_text="As the page writes it (fetch upper-cases get, post, ...)."
    )
    headers = serializers.ListField(
        child=serializers.CharField(max_length=4096, trim_whitespace=False),
        default=list,
        max_length=probe.MAX_HEADERS,
        help_text="Request headers the page sets: 'Name' or 'Name: value'.",
    )
    credentials = serializers.ChoiceField(
        choices=list(probe.CREDENTIALS), default="same-origin", help_text="The fetch's credentials mode."
    )


class ErrorSerializer(serializers.Serializer[dict[str, object]]):
    code = serializers.ChoiceField(
        choices=["timeout", "refused", "dns", "tls", "too-large", "protocol", "redirect-refused", "redirects"]
    )
    detail = serializers.CharField()


class ExchangeSerializer(serializers.Serializer[dict[str, object]]):
    url = serializers.CharField(help_text="Where it was sent (the last hop after redirects).")
    method = serializers.CharField()
    sent = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()), help_text="[name, value] pairs sent."
    )
    status = serializers.IntegerField(allow_null=True, help_text="null: no answer (see error).")
    headers = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="[name, value] pairs as received, duplicates kept: Access-Control-*, Vary, caching "
        "(Cache-Control, Age, Expires, X-Cache, ...), Location, Content-Type, Server, Via.",
    )
    body_bytes = serializers.IntegerField(help_text="Bytes of the body read (at most PROBE_MAX_BYTES).")
    truncated = serializers.BooleanField(help_text="The body was longer: reading stopped.")
    redirects = serializers.ListField(
        child=serializers.DictField(), help_text="Redirects followed: {status, location} each."
    )
    error = ErrorSerializer(allow_null=True)


class VerdictSerializer(serializers.Serializer[dict[str, object]]):
    allowed = serializers.BooleanField()
    message = serializers.CharField(
        allow_blank=True, help_text="The engine's console message; empty when allowed."
    )
    reason = serializers.CharField(
        allow_blank=True, help_text="A stable code of the failed check; empty when allowed."
    )
    stage = serializers.CharField(
        allow_blank=True, help_text="preflight or response: the answer that failed."
    )
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Notes that refuse nothing.")
    max_age = serializers.IntegerField(
        allow_null=True, help_text="Seconds this engine caches the preflight's answer (null: no preflight)."
    )


class ExpectedAnswerSerializer(serializers.Serializer[dict[str, object]]):
    headers = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))


class ExpectedSerializer(serializers.Serializer[dict[str, object]]):
    allowed = serializers.BooleanField(
        help_text="check/'s verdict for the same fetch (credentials included): would every engine "
        "let the page read corsadmin's own answer?"
    )
    policy = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    preflight = ExpectedAnswerSerializer(allow_null=True)
    response = ExpectedAnswerSerializer(allow_null=True)


class DisagreementSerializer(serializers.Serializer[dict[str, object]]):
    kind = serializers.CharField(
        help_text="duplicate-allow-origin, cached-other-origin, missing-vary, stripped-header, "
        "rewritten-header, added-header, error-without-cors, preflight-not-ok, no-answer, redirect-refused."
    )
    detail = serializers.CharField()


class ProbeResultSerializer(serializers.Serializer[dict[str, object]]):
    url = serializers.CharField()
    origin = serializers.CharField()
    method = serializers.CharField(help_text="As sent (fetch's normalisation applied).")
    headers = serializers.ListField(child=serializers.CharField(), help_text="The header names, lower case.")
    credentials = serializers.CharField()
    preflight = ExchangeSerializer(allow_null=True, help_text="null: no preflight is needed.")
    response = ExchangeSerializer(
        allow_null=True, help_text="null: not sent, as the preflight let no browser through."
    )
    engines = serializers.DictField(child=VerdictSerializer(), help_text="chromium, firefox, webkit.")
    expected = ExpectedSerializer(allow_null=True, help_text="null: this site does not serve the URL's host.")
    disagreements = DisagreementSerializer(many=True)


class ProbeView(CorsAdminAPIView, APIView):
    """Send a browser's preflight and request to a URL, and compare with corsadmin's decision."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanProbe]
    parser_classes = [SafeJSONParser]

    @extend_schema(
        summary="Probe the real edge",
        request=ProbeQuerySerializer,
        responses={200: ProbeResultSerializer},
        description="Sends requests from the server (CORSADMIN['PROBE_TIMEOUT'] seconds at most): "
        "a timeout, refused connection or refused redirect is the answer's error, still a 200.",
    )
    def post(self, request: Request) -> Response:
        query = ProbeQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        try:
            asked = probe.question(**query.validated_data)
        except Refusal as exc:
            raise serializers.ValidationError(exc.detail) from None
        result: dict[str, Any] = edge.run(asked)
        return Response(result)
