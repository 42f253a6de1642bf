from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from ..models import AllowedOrigin, Policy


class OriginFilter(django_filters.FilterSet):
    policy = django_filters.CharFilter(field_name="policy__name", help_text="The policy's name.")
    enabled = django_filters.BooleanFilter()
    search = django_filters.CharFilter(method="search_text", help_text="Text in the origin or the note.")

    class Meta:
        model = AllowedOrigin
        fields = ("policy", "enabled", "search")

    def search_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(origin__icontains=value) | Q(note__icontains=value))


class PolicyFilter(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    search = django_filters.CharFilter(method="search_text", help_text="Text in the name or the note.")

    class Meta:
        model = Policy
        fields = ("enabled", "search")

    def search_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(note__icontains=value))
