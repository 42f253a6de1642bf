"""What the admin's overview page shows: charts of allowed and refused requests per policy,
the most refused origins, entries expiring soon or unused, what the exceptions denied, and
recent changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from .charts import Series, bar_chart
from .models import AllowedOrigin, Policy, PolicyHour, RefusedOrigin
from .usage import unused, with_usage

ALLOWED_COLOUR = "#2b6cb0"  # blue and orange: told apart with any colour vision
REFUSED_COLOUR = "#dd6b20"
HOURS = 24
DAYS = 30
EXPIRING_DAYS = 7
UNUSED_DAYS = 30
TOP_REFUSED = 10
ROWS = 20  # of each list
CHANGES = 15


@dataclass
class PolicyCharts:
    policy: str
    allowed: int  # over the 30 days
    refused: int
    hourly: SafeString
    daily: SafeString


def _hour_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def charts(now: datetime) -> list[PolicyCharts]:
    """Per policy with requests in the last 30 days, busiest first: a chart of the last 24
    hours (hour by hour, in the current time zone) and one of the last 30 days."""
    local_now = timezone.localtime(now)
    last_hour = _hour_start(now)
    hours = [last_hour - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    today = local_now.date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    first_day = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))
    start = min(first_day, hours[0])
    hourly: dict[str, dict[datetime, list[int]]] = {}
    daily: dict[str, dict[date, list[int]]] = {}
    rows = PolicyHour.objects.filter(hour__gte=start).values_list("policy", "hour", "allowed", "refused")
    for policy, hour, allowed, refused in rows:
        if hour >= hours[0]:
            slot = hourly.setdefault(policy, {}).setdefault(hour, [0, 0])
            slot[0] += allowed
            slot[1] += refused
        day = timezone.localtime(hour).date()
        if day >= days[0]:
            slot = daily.setdefault(policy, {}).setdefault(day, [0, 0])
            slot[0] += allowed
            slot[1] += refused
    totals = {
        policy: (sum(a for a, _ in per_day.values()), sum(r for _, r in per_day.values()))
        for policy, per_day in daily.items()
    }
    out = []
    for policy in sorted(totals, key=lambda p: (-sum(totals[p]), p)):
        label = policy or "(receiver)"
        per_hour = hourly.get(policy, {})
        hour_values = [per_hour.get(h, [0, 0]) for h in hours]
        local_hours = [timezone.localtime(h) for h in hours]
        per_day = daily[policy]
        day_values = [per_day.get(d, [0, 0]) for d in days]
        out.append(
            PolicyCharts(
                policy=label,
                allowed=totals[policy][0],
                refused=totals[policy][1],
                hourly=bar_chart(
                    f"chart-{label}-hourly",
                    gettext("Policy %(policy)s: allowed and refused requests per hour, last 24 hours")
                    % {"policy": label},
                    [f"{h:%H}" for h in local_hours],
                    _series(hour_values),
                    bar_titles=[date_format(h, "DATETIME_FORMAT") for h in local_hours],  # the admin's format
                    label_every=3,
                    x_label=gettext("hour (%(timezone)s)")
                    % {"timezone": timezone.get_current_timezone_name()},
                ),
                daily=bar_chart(
                    f"chart-{label}-daily",
                    gettext("Policy %(policy)s: allowed and refused requests per day, last 30 days")
                    % {"policy": label},
                    [f"{d:%m-%d}" for d in days],
                    _series(day_values),
                    bar_titles=[date_format(d, "DATE_FORMAT") for d in days],
                    label_every=5,
                    x_label=gettext("day"),
                ),
            )
        )
    return out


def _series(values: list[list[int]]) -> list[Series]:
    return [
        Series(gettext("allowed"), ALLOWED_COLOUR, [a for a, _ in values]),
        Series(gettext("refused"), REFUSED_COLOUR, [r for _, r in values]),
    ]


def top_refused() -> QuerySet[RefusedOrigin]:
    return RefusedOrigin.objects.filter(dismissed=False).order_by("-count", "origin")[:TOP_REFUSED]


def expiring(now: datetime) -> QuerySet[AllowedOrigin]:
    return (
        AllowedOrigin.objects.filter(
            enabled=True, expires_at__gt=now, expires_at__lte=now + timedelta(days=EXPIRING_DAYS)
        )
        .select_related("policy")
        .order_by("expires_at", "origin")
    )


def unused_entries() -> QuerySet[AllowedOrigin]:
    return (
        with_usage(AllowedOrigin.objects.filter(enabled=True).select_related("policy"))
        .filter(unused(UNUSED_DAYS))
        .order_by(F("usage__last_seen").asc(nulls_first=True), "origin")
    )


def denials() -> QuerySet[AllowedOrigin]:
    """Enabled exceptions (deny entries), the most used first: what each refused."""
    return with_usage(
        AllowedOrigin.objects.filter(effect=AllowedOrigin.DENY, enabled=True).select_related("policy")
    ).order_by("-hits", "origin")


def recent_changes() -> QuerySet[LogEntry]:
    types = ContentType.objects.get_for_models(Policy, AllowedOrigin).values()
    return (
        LogEntry.objects.filter(content_type__in=[t.pk for t in types])
        .select_related("user", "content_type")
        .order_by("-action_time", "-pk")[:CHANGES]
    )


def covering_policy(path: str) -> Policy | None:
    """The highest-priority policy with a row that covers ``path`` (where Allow adds the origin)."""
    from .refresh import holder

    names = [p.name for p in holder.get().policies if p.match_path(path)]
    found = {p.name: p for p in Policy.objects.filter(name__in=names)}
    for name in names:
        if name in found:
            return found[name]
    return Policy.objects.filter(name="default").first()


def context(now: datetime) -> dict[str, Any]:
    unused_list = unused_entries()
    return {
        "charts": charts(now),
        "top_refused": list(top_refused()),
        "expiring": list(expiring(now)[:ROWS]),
        "unused": list(unused_list[:ROWS]),
        "unused_total": unused_list.count(),
        "denials": list(denials()[:ROWS]),
        "changes": list(recent_changes()),
        "expiring_days": EXPIRING_DAYS,
        "unused_days": UNUSED_DAYS,
        "allowed_colour": ALLOWED_COLOUR,
        "refused_colour": REFUSED_COLOUR,
    }
