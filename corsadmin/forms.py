from __future__ import annotations

import re
from typing import Any

from django import forms

from .models import AllowedOrigin, Policy
from .origins import canonical_origin


class TokenListField(forms.CharField):
    """A list of methods or header names, edited as comma-separated text."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [item for item in re.split(r"[\s,]+", text) if item]


class PolicyForm(forms.ModelForm):
    allow_methods = TokenListField(required=False, help_text="Comma-separated, e.g. GET, POST.")
    allow_headers = TokenListField(required=False, help_text="Comma-separated request header names.")
    expose_headers = TokenListField(required=False, help_text="Comma-separated response header names.")

    class Meta:
        model = Policy
        fields = "__all__"


class AllowedOriginForm(forms.ModelForm):
    """Canonicalises the origin in the form, so duplicates among inline rows are caught as such."""

    class Meta:
        model = AllowedOrigin
        fields = "__all__"

    def clean_origin(self) -> str:
        return canonical_origin(self.cleaned_data["origin"])
