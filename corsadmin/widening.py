"""What removing exceptions (deny entries) would allow: the admin's bulk disable, delete, move
and set-expiry actions name it and ask for confirmation, the CLI prints it, the API's
PUT/PATCH of an exception returns it in ``warnings`` and the admin's forms show it after a save.
Also the other way round: the exceptions that leave a new allow entry allowing nothing.

A deny entry refuses the origins it matches in its own policy only, so removing it opens
exactly the origins that the same policy's remaining allow entries (or ``allow_all_origins``)
match and no remaining deny entry still refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from .models import AllowedOrigin
from .origins import ANY_PORT, NULL, OriginEntry, parse_entry

EVERY_ORIGIN = gettext_lazy("allow all origins")


@dataclass(frozen=True)
class Opening:
    """``origins`` (an entry's text: exact, wildcard or port wildcard) would be allowed in
    ``policy`` by ``allowed_by`` once the deny entry ``deny`` is gone."""

    deny: str
    origins: str
    allowed_by: str
    policy: str


def _host_overlap(a: OriginEntry, b: OriginEntry) -> tuple[str, bool] | None:
    """The hosts both match: (host or wildcard base, wildcard?), or None."""
    if not a.wildcard and not b.wildcard:
        return (a.host, False) if a.host == b.host else None
    if a.wildcard and b.wildcard:
        if a.host == b.host or a.host.endswith("." + b.host):
            return a.host, True
        return (b.host, True) if b.host.endswith("." + a.host) else None
    wild, exact = (a, b) if a.wildcard else (b, a)
    return (exact.host, False) if exact.host.endswith("." + wild.host) else None


def overlap(a: OriginEntry, b: OriginEntry) -> str | None:
    """The origins both entries match, as an entry's text; None when they share none."""
    if a.is_null or b.is_null:
        return NULL if a.is_null and b.is_null else None
    if a.scheme != b.scheme:
        return None
    hosts = _host_overlap(a, b)
    if hosts is None:
        return None
    if a.port == b.port or b.port == ANY_PORT:
        port = a.port
    elif a.port == ANY_PORT:
        port = b.port
    else:
        return None
    host, wildcard = hosts
    return f"{a.scheme}://{'*.' if wildcard else ''}{host}{':' + port if port else ''}"


def _parsed(text: str) -> OriginEntry | None:
    try:
        return parse_entry(text)
    except ValidationError:
        return None  # written around validation: the loader ignores it too


def _candidates(deny: OriginEntry) -> Q:
    """Rows that may overlap ``deny`` (a superset, narrowed in Python): a policy of 100,000
    exact origins is not read whole for one exception."""
    if deny.is_null:
        return Q(origin=NULL)
    patterns = Q(origin__contains="*")
    if deny.is_exact:
        return patterns | Q(origin=deny.text)
    return patterns | Q(origin__startswith=f"{deny.scheme}://", origin__contains=deny.host)


def _active(entry: AllowedOrigin, now: object) -> bool:
    return entry.enabled and (entry.expires_at is None or entry.expires_at > now)  # type: ignore[operator]


def openings(removed: Iterable[AllowedOrigin]) -> tuple[list[AllowedOrigin], list[Opening]]:
    """Of the entries about to be disabled, deleted or moved away: the deny entries in force,
    and what their going would allow (entries in ``removed`` count as gone)."""
    removed = list(removed)
    gone = {entry.pk for entry in removed}
    now = timezone.now()
    denies = [entry for entry in removed if entry.is_deny and _active(entry, now)]
    found: list[Opening] = []
    for deny in denies:
        parsed = _parsed(deny.origin)
        if parsed is None:
            continue
        policy = deny.policy
        rows = [
            (row, entry)
            for row in AllowedOrigin.objects.filter(_candidates(parsed), policy_id=policy.pk)
            .exclude(pk__in=gone)
            .order_by("origin")
            if _active(row, now) and (entry := _parsed(row.origin)) is not None
        ]
        staying = [entry for row, entry in rows if row.is_deny]
        allows = [(row.origin, entry) for row, entry in rows if not row.is_deny]
        if policy.allow_all_origins:
            allows.append((str(EVERY_ORIGIN), parsed))
        for allowed_by, allow in allows:
            opened = overlap(parsed, allow)
            if opened is None:
                continue
            opened_entry = _parsed(opened)
            if opened_entry is None or any(overlap(other, opened_entry) == opened for other in staying):
                continue  # another exception still refuses all of it
            found.append(Opening(deny.origin, opened, allowed_by, policy.name))
    return denies, found


def refusing(entry: AllowedOrigin) -> list[AllowedOrigin]:
    """For an allow entry: the exceptions (deny entries) in force in its policy that refuse all
    it matches, so that it allows nothing while they stand."""
    policy_id = entry.policy_id
    parsed = None if entry.is_deny or policy_id is None else _parsed(entry.origin)
    if parsed is None or policy_id is None:
        return []
    now = timezone.now()
    rows = (
        AllowedOrigin.objects.filter(_candidates(parsed), policy_id=policy_id, effect=AllowedOrigin.DENY)
        .exclude(pk=entry.pk)
        .select_related("policy")
        .order_by("origin")
    )
    return [
        deny
        for deny in rows
        if _active(deny, now) and (denied := _parsed(deny.origin)) and overlap(denied, parsed) == parsed.text
    ]


REFUSED_BY_EXCEPTION = gettext_noop(
    "The exception (deny entry) %(deny)s in policy '%(policy)s' refuses %(origin)s: this entry allows "
    "nothing there until that exception is disabled, deleted or expires."
)


def refusing_messages(entry: AllowedOrigin) -> list[str]:
    """``refusing`` in words: the admin's and the API's warning after a write of an allow entry."""
    return [
        gettext(REFUSED_BY_EXCEPTION)
        % {"deny": deny.origin, "policy": deny.policy.name, "origin": entry.origin}
        for deny in refusing(entry)
    ]


NO_LONGER_REFUSED = gettext_noop(
    "The exception %(deny)s no longer refuses %(origins)s: allowed by %(allowed_by)s in policy '%(policy)s'."
)
REFUSED_UNTIL_EXPIRY = gettext_noop(
    "Once the exception %(deny)s expires at %(when)s, it no longer refuses %(origins)s: allowed by "
    "%(allowed_by)s in policy '%(policy)s'."
)


def messages(found: Iterable[Opening], expires_at: datetime | None = None) -> list[str]:
    """One sentence per opening, as the CLI prints it and the API's ``warnings`` say it; with
    ``expires_at``, what becomes allowed when the exception expires then."""
    # Never an origin first: the admin capitalises a message's first letter ("Http://").
    if expires_at is None:
        return [gettext(NO_LONGER_REFUSED) % _words(o) for o in found]
    return [gettext(REFUSED_UNTIL_EXPIRY) % {**_words(o), "when": expires_at.isoformat()} for o in found]


def _words(o: Opening) -> dict[str, str]:
    return {"deny": o.deny, "origins": o.origins, "allowed_by": o.allowed_by, "policy": o.policy}


class ChangeWatch:
    """Around one explicit change of an entry (the API's PUT/PATCH, the admin's forms): what it
    opens, found before the change is written (``openings`` reads the other rows as they stand)."""

    def __init__(self, before: AllowedOrigin) -> None:
        self.policy_id, self.expires_at = before.policy_id, before.expires_at
        in_force = before.is_deny and _active(before, timezone.now())
        self.found = openings([before])[1] if in_force else []

    def warnings(self, after: AllowedOrigin) -> list[str]:
        """What the change made (or will make, at its new expiry) allowed."""
        if not self.found:
            return []
        if not after.is_deny or after.policy_id != self.policy_id or not _active(after, timezone.now()):
            return messages(self.found)
        if after.expires_at is not None and after.expires_at != self.expires_at:
            return messages(self.found, after.expires_at)
        return []


def write_warnings(entry: AllowedOrigin, watch: ChangeWatch | None = None) -> list[str]:
    """What a write of one entry says beyond the entry's own risks (``AllowedOrigin.warnings``):
    what changing an exception opened (``watch``, taken before the write), and the exceptions
    that leave an allow entry allowing nothing. The API's ``warnings`` and the admin's messages."""
    return [*(watch.warnings(entry) if watch is not None else []), *refusing_messages(entry)]
