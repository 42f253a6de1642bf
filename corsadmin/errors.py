"""Validation errors in words: field errors as ``field: message`` lines.

Plain data in, text out, so the command line, the import and the API report a
refusal alike. (DRF's own error objects are built in ``corsadmin.api.serializers``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .fields import non_field_key

DUPLICATE_ORIGIN = _("This origin is already listed in this policy.")
DUPLICATE_POLICY = _("A policy with this name already exists.")


def model_errors(exc: ValidationError, non_field: str | None = None) -> dict[str, list[str]]:
    """A model ``ValidationError`` as ``{field: [messages]}``.

    ``__all__`` (e.g. a constraint) becomes ``non_field``, or DRF's
    ``non_field_errors`` when the caller does not know which field it is about.
    """
    if not hasattr(exc, "error_dict"):
        return {non_field_key(): list(exc.messages)}
    key_for_all = non_field or non_field_key()
    errors: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        errors.setdefault(key_for_all if name == "__all__" else name, []).extend(messages)
    return errors


def error_lines(detail: Any, path: str = "") -> list[str]:
    """Flatten error details (DRF's or ``model_errors``) into ``path: message`` lines."""
    if isinstance(detail, Mapping):
        lines = []
        for key, value in detail.items():
            if key == non_field_key():
                sub = path
            elif str(key).isdigit():
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            lines.extend(error_lines(value, sub))
        return lines
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [f"{path}: {item}" if path else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            if item:
                lines.extend(error_lines(item, f"{path}[{index}]"))
        return lines
    return [f"{path}: {detail}" if path else str(detail)]


def one_line(detail: Any) -> str:
    return "; ".join(error_lines(detail))
