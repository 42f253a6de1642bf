"""The OpenAPI description: drf-spectacular's, plus the error answers every view can give
and the links between operations (create a policy, then add an origin to it, ...)."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema

from . import previews

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "DRF field errors: field name (or position) -> messages, nested for lists and objects.",
    "additionalProperties": {},
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the next request.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
# Read-only fields a response carries only when they have something to say.
OPTIONAL_OUTPUT = {"warnings"}


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# --- links: how a response's values feed the next request ---------------------------------


def _object_links(thing: str, operations: str, key: str, parameter: str) -> dict[str, Any]:
    """Show, replace, change and delete the object a response describes."""
    value = f"$response.body#/{key}"
    return {
        f"{verb}{thing}": {"operationId": f"{operations}_{action}", "parameters": {parameter: value}}
        for verb, action in (
            ("Get", "retrieve"),
            ("Replace", "update"),
            ("Change", "partial_update"),
            ("Delete", "destroy"),
        )
    }


POLICY_LINKS = {
    **_object_links("Policy", "policies", "name", "name"),
    "AddOriginToPolicy": {
        "operationId": "origins_create",
        "requestBody": {"policy": "$response.body#/name"},
        "description": "Allow an origin in this policy (the rest of the body is the caller's).",
    },
    "ListOriginsOfPolicy": {"operationId": "origins_list", "parameters": {"policy": "$response.body#/name"}},
}
ORIGIN_LINKS = {
    **_object_links("Origin", "origins", "id", "id"),
    "GetPolicyOfOrigin": {
        "operationId": "policies_retrieve",
        "parameters": {"name": "$response.body#/policy"},
    },
    "CheckOrigin": {"operationId": "check_retrieve", "parameters": {"origin": "$response.body#/origin"}},
}
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "policies_create": {"201": POLICY_LINKS},
    "policies_retrieve": {"200": POLICY_LINKS},
    "policies_update": {"200": POLICY_LINKS},
    "policies_partial_update": {"200": POLICY_LINKS},
    "origins_create": {"201": ORIGIN_LINKS},
    "origins_retrieve": {"200": ORIGIN_LINKS},
    "origins_update": {"200": ORIGIN_LINKS},
    "origins_partial_update": {"200": ORIGIN_LINKS},
    "export_retrieve": {
        "200": {
            "ImportExport": {
                "operationId": "import_create",
                "requestBody": "$response.body",
                "description": "An export imported back changes nothing.",
            }
        }
    },
}


class CorsAdminSessionScheme(SessionScheme):
    """corsadmin's session authentication is DRF's (with the site's CSRF trust): a cookie."""

    target_class = "corsadmin.api.authentication.SessionAuthentication"


class CorsAdminSchema(AutoSchema):
    """Documents 400 (field errors), 401, 403, 404 and (when throttled) 429 answers next to the
    success, and links."""

    def map_parsers(self) -> list[str]:
        # Form fields are accepted too (for curl -d), but JSON is the documented body.
        return ["application/json"]

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        # drf-spectacular's AutoSchema has no annotations
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]
        required = [name for name in schema.get("required", []) if name not in OPTIONAL_OUTPUT]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        return schema

    def _previewed(self) -> bool:
        """A write that ``?dry_run=true`` previews."""
        view = self.view
        return self.method in previews.PREVIEWED and (
            isinstance(view, previews.PreviewMixin)
            or (self.method == "POST" and self.path.endswith("/import/"))
        )

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        return [*parameters, previews.DRY_RUN] if self._previewed() else parameters

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, links in LINKS.get(self.get_operation_id(), {}).items():
            if code in responses:
                responses[code]["links"] = links
        previewed = self._previewed()
        if previewed:
            previews.document(responses, self.method)
        if self.method != "DELETE" or previewed:
            responses.setdefault("400", _response("Bad input: nothing was changed.", FIELD_ERRORS))
        if self.method == "POST" and self.path.endswith("/import/"):
            responses.setdefault(
                "413",
                _response("The document is over CORSADMIN['IMPORT_MAX_BYTES']: nothing was changed.", DETAIL),
            )
        responses.setdefault("401", _response("No or invalid credentials.", DETAIL))
        responses.setdefault(
            "403",
            _response(
                "Missing permission (or CSRF token with a session); with an origin lease's key, "
                "a request outside its scope (the detail names its policy and pattern).",
                DETAIL,
            ),
        )
        if "{" in self.path or self._is_list_view():
            responses.setdefault("404", _response("No such object (or page).", DETAIL))
        if getattr(self.view, "throttle_classes", None):  # the site's DEFAULT_THROTTLE_CLASSES
            responses.setdefault(
                "429",
                {
                    **_response("Too many requests: see REST_FRAMEWORK throttle rates.", DETAIL),
                    "headers": RETRY_AFTER,
                },
            )
        return responses
