"""What a policy and an allowed origin may hold: the refusal messages every front end shows,
and the validators of the fields (HTTP tokens, URL regexes, expiries, shared hosting)."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..origins import parse_entry, shared_hosting
from ..regex import regex_problem

# An HTTP token (RFC 9110 5.6.2): a method or a header name.
TOKEN_PATTERN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN = re.compile(TOKEN_PATTERN)


NULL_WITH_CREDENTIALS = _(
    "'null' on a policy that allows credentials would let any sandboxed iframe or local file read "
    "your users' data. Use a policy without credentials, or set "
    "CORSADMIN['ALLOW_NULL_WITH_CREDENTIALS'] = True if you really mean it."
)


NULL_CSRF_TRUSTED = _(
    "'null' cannot be CSRF-trusted: every sandboxed iframe and file:// page sends Origin: null, "
    "so trusting it would let any site pass Django's CSRF origin check. Untick 'CSRF trusted'."
)


# What an entry may let its origin do (the API's ``scopes``), and the model's flag for each.
SCOPES = ("cors", "csrf", "websocket")
SCOPE_FLAGS = ("cors", "csrf_trusted", "websocket")
NO_SCOPE = _("Give the entry at least one scope: cors, csrf or websocket.")
SCOPES_CONTRADICTED = _("csrf_trusted says otherwise than scopes: give one of them, or both alike.")


DENY_CSRF_TRUSTED = _(
    "A deny entry cannot be CSRF-trusted: it refuses the origin. Untick 'CSRF trusted', or make "
    "the entry an allow entry."
)


EVERY_ORIGIN_WITH_CREDENTIALS = _(
    "A policy that allows credentials cannot allow every origin: browsers refuse '*' with "
    "credentials, and echoing any origin would hand your users' data to every site. List the "
    "origins that need it, or a subdomain wildcard you control such as https://*.example.com."
)


PAST_EXPIRY = _(
    "This expiry is in the past: the entry would never match. Give a later date and time, or leave "
    "it empty to never expire."
)


DENIED_IN_POLICY = _(
    "Policy %(policy)s already lists this origin as an exception (deny entry), which refuses it. "
    "To allow it, change that entry instead of adding another: make it an allow entry, or disable "
    "or delete it."
)


PLAIN_HTTP_WITH_CREDENTIALS = _(
    "Policy %(policy)s allows credentials and lists the plain http:// origin %(origin)s: anyone on "
    "the network path can impersonate it and read your users' data. Prefer https://."
)


def expiry_in_past(value: Any) -> bool:
    """Whether an ``expires_at`` given now is already past (None never expires)."""
    return value is not None and value <= timezone.now()


# The messages of ``clean_token_list``, by what the list holds.
TOKEN_LIST_MESSAGES = {
    "methods": (
        _("Give the methods as a list of strings."),
        _("'%(item)s' is not a valid method: use letters, digits and - (e.g. X-Request-Id)."),
    ),
    "headers": (
        _("Give the headers as a list of strings."),
        _("'%(item)s' is not a valid header: use letters, digits and - (e.g. X-Request-Id)."),
    ),
}


def validate_url_regex(value: str) -> None:
    problem = regex_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid_regex")


def clean_token_list(value: Any, what: str, upper: bool = False) -> list[str]:
    """Validate a list of HTTP tokens (methods or header names), deduplicated, in order."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(TOKEN_LIST_MESSAGES[what][0], code="invalid_list")
    cleaned: list[str] = []
    for item in value:
        token = item.strip()
        if not _TOKEN.fullmatch(token):
            raise ValidationError(
                TOKEN_LIST_MESSAGES[what][1] % {"item": item},
                code="invalid_token",
            )
        token = token.upper() if upper else token.lower()
        if token not in cleaned:
            cleaned.append(token)
    return cleaned


def shared_hosting_wildcards(origins: Any) -> list[tuple[str, str]]:
    """(origin, platform) of the wildcards among ``origins`` (texts) on shared hosting."""
    found = []
    for text in origins:
        try:
            platform = shared_hosting(parse_entry(text))
        except ValidationError:
            continue  # a row written around validation: the loader ignores it
        if platform is not None:
            found.append((text, platform))
    return found
