"""What each browser engine does with a cross-origin ``fetch()``, given what the server answered.

Pure Python: no ORM, no request objects. It models the Fetch Standard's CORS check and
CORS-preflight check (https://fetch.spec.whatwg.org/#cors-check) as each engine implements
them, in each engine's order, and returns the console message that engine prints, word for
word where the engine's source gives it (Chromium's checked against a real Chromium 156):

- Chromium: ``services/network/public/cpp/cors/cors.cc`` (the checks) and
  ``third_party/blink/renderer/platform/loader/cors/cors_error_string.cc`` (the words);
- Firefox: ``netwerk/protocol/http/nsCORSListenerProxy.cpp`` and
  ``dom/locales/en-US/chrome/security/security.properties``;
- WebKit: ``Source/WebCore/loader/CrossOriginAccessControl.cpp`` and
  ``CrossOriginPreflightResultCache.cpp``.

Where they differ: Chromium and WebKit read a duplicated ``Access-Control-Allow-Origin`` as
one value joined by ", " (so "multiple values"), Firefox counts the header lines; Chromium
and Firefox still let ``Access-Control-Allow-Headers: *`` cover ``Authorization`` (both
deprecated; reported as a warning), WebKit follows the standard; a preflight answer is
cached for at most 7,200 s (Chromium), 86,400 s (Firefox) or 600 s (WebKit), 5 s when the
answer names no ``Access-Control-Max-Age``. Console messages are the browsers' own and
stay English; warnings are corsadmin's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .engine_checks import CHECKS, authorization_warning, webkit_message, wildcard_covers_authorization
from .fetches import (
    CREDENTIALS_MODES,
    MAX_AGE,
    Answer,
    Fail,
    Fetch,
    get_header,
    is_cross_origin,
    needs_preflight,
    normalise_method,
    unsafe_headers,
)

__all__ = [
    "CREDENTIALS_MODES",
    "ENGINES",
    "Answer",
    "Fetch",
    "Verdict",
    "cached_seconds",
    "needs_preflight",
    "normalise_method",
    "unsafe_headers",
    "verdict",
    "verdicts",
]

ENGINES = ("chromium", "firefox", "webkit")
# Seconds a preflight's answer is cached at most, and when it names no Max-Age.
MAX_AGE_CAP = {"chromium": 7200, "firefox": 86400, "webkit": 600}
DEFAULT_MAX_AGE = 5


@dataclass(frozen=True)
class Verdict:
    """One engine's verdict: may the page read the response, and what the console says.

    ``reason`` is a stable code of the failed check ("" when allowed); ``stage`` says which
    answer failed it (``preflight`` or ``response``); ``warnings`` are notes that refuse
    nothing (a Max-Age above the engine's cap, Firefox's deprecation warning);
    ``max_age`` the seconds this engine caches the preflight's answer (None: no preflight).
    """

    allowed: bool
    message: str  # the console message; "" when allowed
    reason: str = ""
    stage: str = ""
    warnings: tuple[str, ...] = ()
    max_age: int | None = None


# --- Max-Age ------------------------------------------------------------------------------


def cached_seconds(engine: str, value: str | None) -> int:
    """Seconds ``engine`` keeps a preflight's answer whose ``Access-Control-Max-Age`` is ``value``."""
    if value is None or value.strip() == "":
        return DEFAULT_MAX_AGE
    value = value.strip()
    if engine == "chromium":
        # An unparsable value falls back to the default; a negative one caches nothing.
        if not re.fullmatch(r"-?[0-9]+", value):
            return DEFAULT_MAX_AGE
        return max(0, min(int(value), MAX_AGE_CAP[engine]))
    if not value.isdigit():  # Firefox caches nothing, WebKit falls back to the default
        return 0 if engine == "firefox" else DEFAULT_MAX_AGE
    return min(int(value), MAX_AGE_CAP[engine])


def _max_age_warning(engine: str, preflight: Answer) -> tuple[str, ...]:
    value = get_header(preflight, MAX_AGE)
    if value is None or not value.strip().isdigit() or int(value) <= MAX_AGE_CAP[engine]:
        return ()
    return (
        _(
            "Access-Control-Max-Age %(value)s is above %(engine)s's cap: it repeats the preflight "
            "after %(cap)s seconds."
        )
        % {"value": value.strip(), "engine": ENGINE_NAMES[engine], "cap": MAX_AGE_CAP[engine]},
    )


ENGINE_NAMES = {"chromium": "Chromium", "firefox": "Firefox", "webkit": "WebKit"}


def verdict(engine: str, fetch: Fetch, preflight: Answer | None, response: Answer | None) -> Verdict:
    """One engine's verdict; see :func:`verdicts`."""
    if fetch.credentials not in CREDENTIALS_MODES:
        raise ValueError(f"credentials must be one of {', '.join(CREDENTIALS_MODES)}")
    if not is_cross_origin(fetch):
        return Verdict(True, "")
    check_preflight, check_response = CHECKS[engine]
    warnings: tuple[str, ...] = ()
    max_age = None
    if needs_preflight(fetch):
        if preflight is None:
            raise ValueError("this fetch needs a preflight: give its answer")
        failed = check_preflight(fetch, preflight)
        if failed:
            return _refused(engine, fetch, failed, "preflight")
        max_age = cached_seconds(engine, get_header(preflight, MAX_AGE))
        warnings = _max_age_warning(engine, preflight)
        if engine != "webkit" and wildcard_covers_authorization(fetch, preflight):
            warnings += (authorization_warning(engine, fetch),)
    if response is None:
        return Verdict(
            False,
            _("No answer to the request itself was given."),
            "no-response",
            "response",
            warnings,
            max_age,
        )
    failed = check_response(fetch, response)
    if failed:
        return _refused(engine, fetch, failed, "response", warnings, max_age)
    return Verdict(True, "", warnings=warnings, max_age=max_age)


def _refused(
    engine: str,
    fetch: Fetch,
    failed: Fail,
    stage: str,
    warnings: tuple[str, ...] = (),
    max_age: int | None = None,
) -> Verdict:
    if engine == "chromium":
        prefix = (
            f"Access to fetch at '{fetch.url}' from origin '{fetch.origin}' has been blocked by CORS policy: "
        )
        failed = failed._replace(message=prefix + failed.message)
    elif engine == "webkit":
        failed = webkit_message(fetch, failed)
    return Verdict(False, failed.message, failed.reason, stage, warnings, max_age)


def verdicts(fetch: Fetch, preflight: Answer | None, response: Answer | None) -> dict[str, Verdict]:
    """Per engine. preflight None when none is needed; response None when the preflight failed."""
    return {engine: verdict(engine, fetch, preflight, response) for engine in ENGINES}
