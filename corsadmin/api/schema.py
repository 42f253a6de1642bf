"""The OpenAPI description: drf-spectacular's, plus the error answers every view can give."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

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


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class CorsAdminSchema(AutoSchema):
    """Documents 400 (field errors), 401, 403 and 404 answers next to the success."""

    def map_parsers(self) -> list[str]:
        # Form fields are accepted too (for curl -d), but JSON is the documented body.
        return ["application/json"]

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if self.method != "DELETE":
            responses.setdefault("400", _response("Bad input: nothing was changed.", FIELD_ERRORS))
        responses.setdefault("401", _response("No or invalid credentials.", DETAIL))
        responses.setdefault("403", _response("Missing permission (or CSRF token with a session).", DETAIL))
        if "{" in self.path or self._is_list_view():
            responses.setdefault("404", _response("No such object (or page).", DETAIL))
        return responses
