"""The REST API's list filters: policies and origins by name, state, text and days unused."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from ..fields import DAYS_MESSAGE, MAX_DAYS
from ..models import AllowedOrigin, Policy
from ..usage import unused
from .params import flag


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0, yes/no, on/off); anything else is a 400, not "no filter"."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # None: no filter
        if value is None:  # not given
            return None
        answer = flag(str(value))
        if answer is None:
            raise ValidationError(_("Give true or false."), code="invalid")
        return answer

    def validate(self, value: Any) -> None:
        pass


class DaysField(forms.IntegerField):
    """A whole number of days, 1 to 36500 ("1.5", "-1", "x": a 400)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("step_size", None)
        kwargs.update(min_value=1, max_value=MAX_DAYS)
        super().__init__(*args, **kwargs)
        self.error_messages.update(invalid=DAYS_MESSAGE, min_value=DAYS_MESSAGE, max_value=DAYS_MESSAGE)

    def to_python(self, value: Any) -> int | None:
        if value == "":  # given empty (absent is None): not a number of days
            raise ValidationError(DAYS_MESSAGE, code="invalid")
        return super().to_python(value)


class StrictChoiceField(django_filters.fields.ChoiceField):
    """One of the choices; given empty is a 400 (absent: no filter)."""

    def to_python(self, value: Any) -> Any:
        if value == "":
            raise ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
            )
        return super().to_python(value)


class ChoiceFilter(django_filters.ChoiceFilter):
    field_class = StrictChoiceField


class DaysFilter(django_filters.NumberFilter):
    field_class = DaysField


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class OriginFilter(django_filters.FilterSet):
    policy = django_filters.CharFilter(field_name="policy__name", help_text="The policy's name.")
    enabled = BooleanFilter()
    effect = ChoiceFilter(choices=AllowedOrigin.EFFECTS, help_text="allow or deny.")
    search = django_filters.CharFilter(method="search_text", help_text="Text in the origin or the note.")
    unused_days = DaysFilter(
        method="unused_for",
        help_text="Only allow entries never seen, or not seen for this many days (1 to 36500); never an "
        "exception (deny entry), so a clean-up that disables or deletes what it lists never widens access.",
    )

    class Meta:
        model = AllowedOrigin
        fields = ("policy", "enabled", "effect", "search", "unused_days")

    def unused_for(self, queryset: QuerySet[AllowedOrigin], name: str, value: int) -> QuerySet[AllowedOrigin]:
        return queryset.filter(unused(value))

    def search_text(
        self, queryset: QuerySet[AllowedOrigin], name: str, value: str
    ) -> QuerySet[AllowedOrigin]:
        return queryset.filter(Q(origin__icontains=value) | Q(note__icontains=value))


class PolicyFilter(django_filters.FilterSet):
    enabled = BooleanFilter()
    mode = ChoiceFilter(choices=Policy.MODES, help_text="enforce or report.")
    search = django_filters.CharFilter(method="search_text", help_text="Text in the name or the note.")

    class Meta:
        model = Policy
        fields = ("enabled", "mode", "search")

    def search_text(self, queryset: QuerySet[Policy], name: str, value: str) -> QuerySet[Policy]:
        return queryset.filter(Q(name__icontains=value) | Q(note__icontains=value))
