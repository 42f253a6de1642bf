"""The REST API's questions and answers that are no model: check, blocked, import and export.

The check's question has the rules ``cors check`` reads it by (``corsadmin.records``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import serializers

from ..browser_check import question_from_message, question_from_url
from ..console_messages import MAX_MESSAGE_LENGTH, Unreadable
from ..engines import CREDENTIALS_MODES, ENGINES
from ..models import TOKEN_PATTERN, AllowedOrigin, RefusedOrigin
from ..origins import MAX_ORIGIN_LENGTH
from ..records import DOCUMENT_ORIGIN_FIELDS, DOCUMENT_POLICY_FIELDS, PATH_MESSAGE, request_host
from .serializers import OriginSerializer, PolicySerializer, SlugField

# --- import ----------------------------------------------------------------------


class CountsSerializer(serializers.Serializer[dict[str, object]]):
    policies = serializers.IntegerField()
    origins = serializers.IntegerField()


class ImportResultSerializer(serializers.Serializer[dict[str, object]]):
    replace = serializers.BooleanField()
    created = CountsSerializer()
    changed = CountsSerializer()
    unchanged = CountsSerializer()
    deleted = CountsSerializer()
    warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The imported policies' risky origins (plain http:// with credentials); "
        "present only when there are some.",
    )


class ImportJobSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.UUIDField()
    url = serializers.URLField(help_text="Where to poll the job.")
    state = serializers.ChoiceField(
        choices=["queued", "running", "succeeded", "failed"],
        help_text="failed also for a job lost with its server process (then nothing was changed).",
    )
    replace = serializers.BooleanField()
    origins = serializers.IntegerField(help_text="Origins the document names.")
    stage = serializers.CharField(allow_blank=True, help_text="What a running job is doing.")
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    result = ImportResultSerializer(
        required=False, help_text="A succeeded job: what a synchronous import would have answered."
    )

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Declared here: a class attribute would hide Serializer.errors.
        fields["errors"] = serializers.DictField(
            required=False,
            help_text="A failed job: the errors a synchronous import would have answered (400).",
        )
        return fields


# --- check and blocked ---------------------------------------------------------


class CheckQuerySerializer(serializers.Serializer[dict[str, object]]):
    origin = serializers.CharField(
        max_length=MAX_ORIGIN_LENGTH,
        required=False,
        trim_whitespace=False,
        help_text="The Origin header, byte for byte as a browser sends it (required unless `message` "
        "names it).",
    )
    path = serializers.RegexField(
        r"^/",
        default="/",
        max_length=4096,
        trim_whitespace=False,
        error_messages={"invalid": PATH_MESSAGE},
        help_text="The request path (path_info), starting with '/'.",
    )
    method = serializers.RegexField(
        rf"^{TOKEN_PATTERN}\Z",
        default="GET",
        max_length=32,
        help_text="The request's method as the page wrote it in fetch() (which upper-cases only DELETE, "
        "GET, HEAD, OPTIONS, POST and PUT: 'patch' stays lower-case); OPTIONS with request_method asks "
        "about a preflight.",
    )
    request_method = serializers.RegexField(
        rf"^{TOKEN_PATTERN}\Z",
        required=False,
        max_length=32,
        help_text="Access-Control-Request-Method of a preflight (with method=OPTIONS).",
    )
    request_headers = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4096,
        help_text="Comma-separated request header names (Access-Control-Request-Headers).",
    )
    private_network = serializers.BooleanField(
        default=False, help_text="Access-Control-Request-Private-Network: true."
    )
    host = serializers.CharField(
        required=False,
        max_length=300,
        help_text="The request's Host (a port is ignored), for policies limited to hosts and checked "
        "against ALLOWED_HOSTS (a host Django refuses is answered 400); left out: only the policies "
        "for every host apply.",
    )
    credentials = serializers.ChoiceField(
        choices=CREDENTIALS_MODES,
        default="same-origin",
        help_text="The fetch's credentials mode. With include, allowed is true only when a browser "
        "lets the page read the response with cookies.",
    )
    url = serializers.CharField(
        required=False,
        max_length=4096,
        help_text="The absolute URL the page fetches: fills path and host, and is named in the "
        "engines' messages.",
    )
    message = serializers.CharField(
        required=False,
        max_length=MAX_MESSAGE_LENGTH,
        trim_whitespace=False,
        help_text="A CORS console message pasted from Chromium, Firefox or Safari: fills origin, url "
        "(path, host), method, request headers and credentials (what is given explicitly wins).",
    )

    def validate_host(self, value: str) -> str:
        try:
            return request_host(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        self._given = set(data) if isinstance(data, Mapping) else set()  # what the query names
        internal: dict[str, Any] = super().to_internal_value(data)
        return internal

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        message = attrs.pop("message", None)
        given = {name: value for name, value in attrs.items() if name in self._given}
        try:
            if message is not None:
                question, console = question_from_message(message, given)
                attrs = {**attrs, **question, "console": console}
            elif attrs.get("url"):
                attrs = {**attrs, **question_from_url(given)}
        except (Unreadable, DjangoValidationError) as exc:
            text = exc.messages[0] if isinstance(exc, DjangoValidationError) else str(exc)
            raise serializers.ValidationError({"message" if message is not None else "url": [text]}) from None
        if not attrs.get("origin"):
            raise serializers.ValidationError({"origin": [_("This field is required.")]})
        return attrs


class PreflightSerializer(serializers.Serializer[dict[str, object]]):
    request_method = serializers.CharField()
    request_headers = serializers.ListField(child=serializers.CharField())
    allowed = serializers.BooleanField()
    method_allowed = serializers.BooleanField()
    missing_headers = serializers.ListField(child=serializers.CharField())
    headers = serializers.DictField(child=serializers.CharField())


class EngineSerializer(serializers.Serializer[dict[str, object]]):
    allowed = serializers.BooleanField(help_text="Whether this engine lets the page read the response.")
    message = serializers.CharField(
        allow_blank=True, help_text="The console message this engine prints; empty when allowed."
    )
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="Notes that refuse nothing: a Max-Age above the engine's cap, a deprecated rule it still "
        "follows.",
    )
    preflight_cached_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds this engine caches the preflight's answer (its Max-Age cap applied); null: no "
        "preflight.",
    )


class EnginesSerializer(serializers.Serializer[dict[str, object]]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {name: EngineSerializer() for name in ENGINES}


class FixStepSerializer(serializers.Serializer[dict[str, object]]):
    action = serializers.ChoiceField(
        choices=[
            "add_origin",
            "change_policy",
            "add_policy",
            "change_page",
            "change_entry",
            "change_settings",
        ]
    )
    policy = serializers.CharField(allow_null=True)
    origin = serializers.CharField(allow_null=True)
    set = serializers.DictField(
        allow_null=True, help_text="The policy fields to set (change_policy, add_policy)."
    )
    text = serializers.CharField()


class ConsoleSerializer(serializers.Serializer[dict[str, object]]):
    engine = serializers.ChoiceField(choices=ENGINES)
    failed = serializers.CharField(help_text="The check that failed, e.g. allow-credentials, method, header.")
    explanation = serializers.CharField()


class CheckResultSerializer(serializers.Serializer[dict[str, object]]):
    origin = serializers.CharField()
    path = serializers.CharField()
    method = serializers.CharField()
    allowed = serializers.BooleanField(help_text="Whether a browser would let the page make this request.")
    covered = serializers.BooleanField(
        help_text="Whether some enabled policy covers the path (a policy that can allow no origin: "
        "no enabled, unexpired allow entry and not allow-all, covers nothing)."
    )
    policy = serializers.CharField(allow_null=True)
    matched = serializers.CharField(
        allow_null=True,
        help_text="The entry that matched: the allowing entry, or for a refusal by an exception "
        "the deny entry.",
    )
    effect = serializers.ChoiceField(
        choices=AllowedOrigin.EFFECTS,
        allow_null=True,
        help_text="allow when an entry allowed, deny when an exception (deny entry) refused; else null.",
    )
    exception = serializers.DictField(
        child=serializers.CharField(),
        allow_null=True,
        help_text='The first deny entry that matched on the way ({"policy", "origin"}), even when a lower '
        "policy then allowed; null when none.",
    )
    would_refuse = serializers.ListField(
        child=serializers.CharField(),
        help_text="Report-only policies covering the request that would refuse what is allowed.",
    )
    host = serializers.CharField(allow_null=True)
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="The Access-Control-* headers the middleware sends."
    )
    preflight = PreflightSerializer(allow_null=True)
    reason = serializers.CharField()
    credentials = serializers.ChoiceField(
        choices=CREDENTIALS_MODES, help_text="The fetch's credentials mode."
    )
    url = serializers.CharField(help_text="The URL the engines' messages name.")
    status = serializers.IntegerField(
        allow_null=True,
        help_text="400 when Django refuses the host (ALLOWED_HOSTS): the request never reaches the view; "
        "else null (the view's status).",
    )
    middleware_allows = serializers.BooleanField(
        help_text="Whether the middleware's decision allows the origin (allowed also asks the browsers "
        "and Django's host check)."
    )
    engines = EnginesSerializer(help_text="Per browser engine: what a page's fetch() gets.")
    fix = FixStepSerializer(many=True, help_text="For a refusal, the steps that make every browser read it.")
    console = ConsoleSerializer(required=False, help_text="With message: what the pasted message says.")


class BlockedOriginSerializer(serializers.Serializer[RefusedOrigin]):
    origin = serializers.CharField()
    path_prefix = serializers.CharField(help_text="The first segment of the refused paths, e.g. /api/.")
    report = serializers.BooleanField(
        help_text="true: a would-be refusal of the report-only `policy` (the real decision allowed it); "
        "false: a refusal."
    )
    policy = serializers.SerializerMethodField(
        help_text="The report-only policy that would refuse it; null for a refusal."
    )
    count = serializers.IntegerField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()

    def get_policy(self, obj: RefusedOrigin) -> str | None:
        return obj.policy or None


# --- the import/export document (its schema; ``corsadmin.document_plan`` checks it) ---------


class OriginDocumentSerializer(OriginSerializer):
    """An origin inside its policy in the document (the policy is the enclosing one).

    No ``hits`` or ``last_seen``: usage is not configuration, and an import leaves it alone."""

    clean_with_model = False  # the import validates against the database as a whole
    boolean_defaults = False

    class Meta(OriginSerializer.Meta):
        fields = DOCUMENT_ORIGIN_FIELDS


class PolicyDocumentSerializer(PolicySerializer):
    clean_with_model = False
    boolean_defaults = False
    # Matched by name on import, so no uniqueness check here.
    name = SlugField(max_length=64)
    origins = OriginDocumentSerializer(many=True, required=False)

    class Meta(PolicySerializer.Meta):
        fields = (*DOCUMENT_POLICY_FIELDS, "origins")


class DocumentSerializer(serializers.Serializer[dict[str, object]]):
    version = serializers.IntegerField(min_value=1, max_value=1, help_text="Always 1.")
    exported_at = serializers.DateTimeField(read_only=True)
    policies = PolicyDocumentSerializer(many=True)
