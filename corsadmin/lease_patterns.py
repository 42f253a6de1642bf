"""Origin leases' patterns and durations: parsing, canonical form and matching.

A lease's pattern is an exact origin (``scheme://host[:port]``, checked by ``origins``, the
one validator) whose host's first label may hold one ``*``: ``https://pr-*.preview.example.com``,
``https://*.preview.example.com``, ``https://*-app.example.com``. The ``*`` stands for one or
more letters, digits or hyphens inside that one label, never a dot: the pattern above matches
``https://pr-123.preview.example.com``, never ``https://pr-1.x.preview.example.com`` nor
``https://preview.example.com``. The labels below it must not be a public suffix
(``https://pr-*.github.io`` is refused, as ``https://*.github.io`` is). A lease adds exact
origins only: a wildcard, a port wildcard or ``null`` never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .origins import NULL, parse_entry
from .suffixes import is_public_suffix

STAR = "*"
# What the star stands for while the rest is validated: one label's characters, no others.
_PROBE = "x0lease0x"
_STAR_LABEL = re.compile(r"[a-z0-9-]*\*[a-z0-9-]*")
_STAR_MATCHES = "[a-z0-9-]+"

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
MIN_TTL = 60
MAX_TTL = 366 * 86400


def _fail(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_pattern")


@dataclass(frozen=True)
class LeasePattern:
    """A parsed pattern: ``text`` canonical; ``before`` and ``after`` the text around the star
    (``after`` is None for a pattern without one: it matches that origin only)."""

    text: str
    before: str
    after: str | None

    def matches(self, origin: str) -> bool:
        """Whether ``origin`` (canonical, as stored) is one this pattern covers."""
        if self.after is None:
            return origin == self.text
        if not (origin.startswith(self.before) and origin.endswith(self.after)):
            return False
        middle = origin[len(self.before) : len(origin) - len(self.after)]
        return re.fullmatch(_STAR_MATCHES, middle) is not None

    def regex(self) -> str:
        """The same test as ``matches``, for a database's ``__regex`` lookup (PostgreSQL and
        Python's ``re`` read it alike)."""
        if self.after is None:
            return "^" + re.escape(self.text) + "$"
        return "^" + re.escape(self.before) + _STAR_MATCHES + re.escape(self.after) + "$"


def parse_pattern(value: str) -> LeasePattern:
    """Parse and canonicalise a lease's pattern, or raise ``ValidationError``."""
    if not isinstance(value, str) or not value:
        raise _fail(_("Give a pattern such as https://pr-*.preview.example.com."))
    if value.count(STAR) > 1:
        raise _fail(_("'%(value)s' has more than one '*'; a pattern has at most one.") % {"value": value})
    if STAR not in value:
        entry = parse_entry(value)
        if not entry.is_exact or entry.text == NULL:
            raise _fail(
                _("'%(value)s' is not an exact origin nor a pattern with one '*' in the host's first label.")
                % {"value": value}
            )
        return LeasePattern(entry.text, entry.text, None)
    _scheme, sep, rest = value.partition("://")
    first, dot, _below = rest.partition(".")
    if not sep or STAR not in first or not dot or not _STAR_LABEL.fullmatch(first.lower()):
        raise _fail(
            _(
                "'%(value)s' puts its '*' elsewhere than in the host's first label. Write it inside "
                "that label, with letters, digits and hyphens around it, e.g. "
                "https://pr-*.preview.example.com."
            )
            % {"value": value}
        )
    try:
        entry = parse_entry(value.replace(STAR, _PROBE))
    except ValidationError as exc:  # its message quotes the value: with the star, as given
        raise _fail(" ".join(exc.messages).replace(_PROBE, STAR)) from None
    if not entry.is_exact:
        raise _fail(_("'%(value)s' may not also be a wildcard or have any port.") % {"value": value})
    base = entry.host.partition(".")[2]
    if is_public_suffix(base):
        raise _fail(
            _(
                "'%(value)s' would lease origins under the public suffix '%(suffix)s', which belong "
                "to other people. Use a domain you control."
            )
            % {"value": value, "suffix": base}
        )
    before, _probe, after = entry.text.partition(_PROBE)
    return LeasePattern(before + STAR + after, before, after)


def canonical_pattern(value: str) -> str:
    return parse_pattern(value).text


def parse_duration(text: str) -> int:
    """``7d``, ``12h``, ``30m``, ``45s`` or plain seconds, from ``MIN_TTL`` to ``MAX_TTL``."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None:
        raise ValidationError(
            _("'%(value)s' is not a duration: give e.g. 7d, 12h, 30m or a number of seconds.")
            % {"value": text},
            code="invalid_duration",
        )
    seconds = int(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
    validate_ttl(seconds)
    return seconds


def validate_ttl(seconds: int) -> None:
    if not MIN_TTL <= seconds <= MAX_TTL:
        raise ValidationError(
            _("A lease's maximum lifetime is from 1 minute to 366 days (%(min)d to %(max)d seconds).")
            % {"min": MIN_TTL, "max": MAX_TTL},
            code="invalid_duration",
        )


def duration_text(seconds: int) -> str:
    """The largest whole unit: 604800 -> "7d", 5400 -> "90m"."""
    for unit in ("d", "h", "m"):
        size = DURATION_UNITS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
