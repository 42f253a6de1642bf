"""Template filters for the admin's history page: a change's old and new values, in words."""

from __future__ import annotations

from typing import Any

from django import template

from ..history import values_of

register = template.Library()


@register.filter
def change_values(action: Any) -> str:
    return values_of(getattr(action, "change_message", ""))
