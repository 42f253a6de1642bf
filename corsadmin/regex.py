"""Policy path regexes: validated at write time, run in RE2 on every request.

RE2 answers in time linear in the path, whatever the pattern (no catastrophic
backtracking), and its ``$`` matches only at the very end (Python's also matches
before a trailing newline, so ``^/x/$`` would cover ``/x/%0a``). A pattern is
accepted only when both RE2 and Python's ``re`` compile it, so it means the same
in the admin's eyes as on the request path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

import re2
from django.utils.translation import gettext as _

logger = logging.getLogger("corsadmin")

Matcher = Callable[[str], object]


@lru_cache(maxsize=1)
def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # our message says what is wrong, not a line on stderr
    return options


def _reason(error: Exception) -> str:
    text = error.args[0] if error.args else str(error)
    return text.decode() if isinstance(text, bytes) else str(text)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a policy's ``url_regex``, in words; None when it can."""
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        return _("Not a valid regular expression: %(error)s.") % {"error": exc}
    try:
        re2.compile(pattern, _options())
    except re2.error as exc:
        return _(
            "Not a regular expression corsadmin can run safely (%(reason)s). Paths are matched "
            "with RE2, which has no lookarounds (?=...) (?!...) nor backreferences \\1, and "
            "repeats at most {1000}."
        ) % {"reason": _reason(exc)}
    return None


@lru_cache(maxsize=512)  # every refresh recompiles its policies: once per pattern is enough
def compile_path_regex(pattern: str | re.Pattern[str]) -> Matcher:
    """The ``match`` of a path regex: RE2 for text; a compiled Python pattern as it is.

    A stored pattern RE2 refuses (written before this rule, or around validation)
    still runs, in Python's ``re``, with one log line.
    """
    if isinstance(pattern, re.Pattern):
        return pattern.match
    try:
        return cast(Matcher, re2.compile(pattern, _options()).match)
    except re2.error as exc:
        matcher = re.compile(pattern).match  # raises (and logs nothing here) if Python cannot either
        logger.warning(
            "corsadmin: url_regex %r runs in Python's backtracking re, not RE2 (%s); rewrite it",
            pattern,
            _reason(exc),
            extra={"event": "regex_fallback"},
        )
        return matcher
