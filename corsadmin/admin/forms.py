"""The admin's forms: the policy and origin change forms, and the forms its actions and check page ask."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..browser_check import question_from_message, question_from_url
from ..console_messages import MAX_MESSAGE_LENGTH, Unreadable
from ..models import (
    DENIED_IN_POLICY,
    PAST_EXPIRY,
    AllowedOrigin,
    Policy,
    default_headers,
    default_methods,
    expiry_in_past,
)
from ..origins import canonical_origin

if TYPE_CHECKING:
    _PolicyModelForm = forms.ModelForm[Policy]
    _OriginModelForm = forms.ModelForm[AllowedOrigin]
else:  # ModelForm takes its model as a type argument in django-stubs only
    _PolicyModelForm = _OriginModelForm = forms.ModelForm


def html(template: str, **params: Any) -> SafeString:
    """``template % params`` as HTML: the template is ours (or its translation), every value is
    escaped unless it is already HTML."""
    return mark_safe(template % {name: conditional_escape(value) for name, value in params.items()})


def exception_link(deny: AllowedOrigin) -> SafeString:
    """A link to an exception's (deny entry's) change page, naming it and its policy."""
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:corsadmin_allowedorigin_change", args=[deny.pk]),
        gettext("change %(deny)s in policy %(policy)s") % {"deny": deny.origin, "policy": deny.policy.name},
    )


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
        return [item for item in re.split(r"[\s,]+", text or "") if item]


STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MethodsWidget(forms.CheckboxSelectMultiple):
    """The standard methods as checkboxes, and a text box for any other (e.g. PROPFIND).

    Also reads comma-separated text posted under the field's own name (scripts, tests).
    """

    def __init__(self) -> None:
        super().__init__(choices=[(m, m) for m in STANDARD_METHODS])

    def format_value(self, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [item for item in re.split(r"[\s,]+", value) if item]
        return [str(v).upper() for v in value or []]

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        from django.utils.html import format_html

        html = super().render(name, value, attrs, renderer)
        others = ", ".join(v for v in self.format_value(value) if v not in STANDARD_METHODS)
        return html + format_html(
            '<p><label for="id_{0}">{2}</label> <input type="text" name="{0}" id="id_{0}" '
            'value="{1}" placeholder="{3}"></p>',
            f"{name}_other",
            others,
            gettext("Other methods:"),
            gettext("e.g. PROPFIND, REPORT"),
        )

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        picked = data.getlist(name) if hasattr(data, "getlist") else data.get(name) or []
        if isinstance(picked, str):
            picked = [picked]
        items = [*picked, data.get(f"{name}_other", "")]
        return [token for item in items for token in re.split(r"[\s,]+", item or "") if token]

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False  # no box ticked is an empty list, as for any checkbox list


def _default_when_left_out(field: Any, default: str) -> None:
    """A choice posted empty or left out (scripts, older forms) is the model's default, and
    not a change."""
    if field is not None:
        field.required = False
        field.empty_value = default


class PolicyForm(_PolicyModelForm):
    # Declared fields do not inherit the model's defaults: give them the same ones, so a
    # policy added with the form as shown answers preflights like one added by the API.
    allow_methods = TokenListField(
        required=False,
        initial=default_methods,
        widget=MethodsWidget(),
        label=_("Allow methods"),
        help_text=_("Tick the methods a preflight may ask for; others in the text box."),
    )
    allow_headers = TokenListField(
        required=False,
        initial=default_headers,
        label=_("Allow headers"),
        help_text=_("Comma-separated request header names."),
    )
    expose_headers = TokenListField(
        required=False, label=_("Expose headers"), help_text=_("Comma-separated response header names.")
    )
    hosts = TokenListField(
        required=False,
        label=_("Hosts"),
        help_text=_(
            "Comma-separated hosts (api.example.com, *.example.com), without port; empty for every host."
        ),
    )

    class Meta:
        model = Policy
        fields = "__all__"  # the admin's fieldsets choose them

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _default_when_left_out(self.fields.get("mode"), Policy.ENFORCE)

    def clean_allow_methods(self) -> list[str]:
        return self._default_when_new_and_empty("allow_methods", default_methods)

    def clean_allow_headers(self) -> list[str]:
        return self._default_when_new_and_empty("allow_headers", default_headers)

    def _default_when_new_and_empty(self, name: str, default: Callable[[], Iterable[str]]) -> list[str]:
        """A new policy without methods or headers gets the defaults, as everywhere else."""
        value: list[str] = self.cleaned_data[name]
        if not value and self.instance._state.adding:
            return list(default())
        return value


class AllowedOriginForm(_OriginModelForm):
    """Canonicalises the origin in the form, so duplicates among inline rows are caught as such."""

    class Meta:
        model = AllowedOrigin
        fields = "__all__"  # the admin's fieldsets choose them

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "expires_at" in self.fields:
            self.fields["expires_at"].help_text = gettext(
                "Date and time in %(timezone)s; leave empty to never expire."
            ) % {"timezone": timezone.get_current_timezone_name()}
        _default_when_left_out(self.fields.get("effect"), AllowedOrigin.ALLOW)

    def clean_origin(self) -> str:
        value: str = self.cleaned_data["origin"]
        if value == "*":  # refused by the model, whose advice depends on the policy's credentials
            return value
        return canonical_origin(value)

    def _update_errors(self, errors: ValidationError) -> None:
        """An origin its policy lists as an exception: the model's words, and a link to that entry."""
        for items in getattr(errors, "error_dict", {}).values():
            for index, error in enumerate(items):
                listed = self.instance.listed_exception() if error.code == "denied" else None
                if listed is not None:
                    message = DENIED_IN_POLICY % {"policy": listed.policy.name}
                    items[index] = ValidationError(
                        html("%(message)s %(link)s", message=message, link=exception_link(listed)),
                        code="denied",
                    )
        super()._update_errors(errors)  # type: ignore[misc]


class PolicyChoiceForm(forms.Form):
    policy = forms.ModelChoiceField(
        Policy.objects.all(), to_field_name="name", initial="default", label=_("Policy")
    )


class ExpiryForm(forms.Form):
    expires_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        label=_("Expires at"),
        help_text=_("Leave empty to never expire."),
    )

    def clean_expires_at(self) -> datetime | None:
        value: datetime | None = self.cleaned_data["expires_at"]
        if expiry_in_past(value):
            raise ValidationError(PAST_EXPIRY, code="past_expiry")
        return value


def _credentials_label(value: str, words: object) -> SafeString:
    # The option's value as the page writes it (quoted English), then what it means.
    return format_html('<code lang="en">{}</code>: {}', value, words)


_credentials_choice = lazy(_credentials_label, SafeString)


class CheckForm(forms.Form):
    message = forms.CharField(
        max_length=MAX_MESSAGE_LENGTH,
        required=False,
        strip=False,
        label=_("Console message"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=_(
            "Or paste the browser's CORS error (Chromium, Firefox or Safari): it fills in the origin, URL, "
            "method and credentials; what you type below wins."
        ),
    )
    origin = forms.CharField(
        max_length=2048,
        required=False,
        label=_("Origin"),
        help_text=_("As the browser sends it, e.g. https://app.example.com"),
    )
    url = forms.CharField(
        max_length=4096,
        required=False,
        label=_("URL"),
        help_text=_("The URL the page fetches, e.g. https://api.example.com/items/ (fills path and host)"),
    )
    path = forms.CharField(
        max_length=2048,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "/"}),
        label=_("Path"),
        help_text=_("The request path, e.g. /api/items/"),
    )
    method = forms.CharField(
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "GET"}),
        label=_("Method"),
        help_text=_("As the page writes it: fetch() sends 'patch' lower-case"),
    )
    request_headers = forms.CharField(
        max_length=2048,
        required=False,
        label=_("Request headers"),
        help_text=_("Headers the page sets, comma-separated (e.g. content-type, x-api-key)"),
    )
    credentials = forms.ChoiceField(
        choices=[
            (
                "same-origin",
                _credentials_choice("same-origin", _("the default: cookies only to the page's own origin")),
            ),
            ("include", _credentials_choice("include", _("cookies and HTTP authentication to any origin"))),
            ("omit", _credentials_choice("omit", _("no cookies, no HTTP authentication"))),
        ],
        required=False,
        initial="same-origin",
        widget=forms.RadioSelect,
        label=_("Credentials"),
        help_text=_("Whether the fetch sends cookies and HTTP authentication"),
    )
    host = forms.CharField(
        max_length=300,
        required=False,
        label=_("Host"),
        help_text=_("The request's Host, for policies limited to hosts (e.g. api.example.com)"),
    )

    def clean_host(self) -> str | None:
        value = self.cleaned_data["host"].strip()
        if not value:
            return None
        from django.http.request import split_domain_port

        from ..hosts import canonical_host

        domain, _port = split_domain_port(value)
        if not domain or "*" in domain:
            raise ValidationError(
                gettext("'%(value)s' is not a request host: give e.g. api.example.com.") % {"value": value}
            )
        return canonical_host(domain)

    def clean(self) -> dict[str, Any]:
        """The question: what was typed, filled from the URL and the pasted message."""
        data: dict[str, Any] = super().clean() or {}
        if self.errors:
            return data
        given = {name: value for name, value in data.items() if value not in (None, "") and name != "message"}
        if data.get("message") and given.get("credentials") == "same-origin":
            del given["credentials"]  # the form's default: a pasted message that says include wins
        try:
            if data.get("message"):
                given, data["console"] = question_from_message(data["message"], given)
            elif given.get("url"):
                given = question_from_url(given)
        except (Unreadable, ValidationError) as exc:
            text = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            self.add_error("message" if data.get("message") else "url", text)
            return data
        if not given.get("origin"):
            self.add_error("origin", gettext("Give the origin, or paste a console message that names it."))
            return data
        data.update(given)
        data["path"] = data.get("path") or "/"
        data["method"] = data.get("method") or "GET"
        data["credentials"] = data.get("credentials") or "same-origin"
        if not data["path"].startswith("/"):
            self.add_error("path", gettext("A path starts with '/'."))
        return data
