"""Each browser engine's CORS check and CORS-preflight check, in that engine's order and words.

Sources (public code): Chromium ``services/network/public/cpp/cors/cors.cc`` and
``third_party/blink/renderer/platform/loader/cors/cors_error_string.cc``; Firefox
``netwerk/protocol/http/nsCORSListenerProxy.cpp`` and
``dom/locales/en-US/chrome/security/security.properties``; WebKit
``Source/WebCore/loader/CrossOriginAccessControl.cpp`` and
``CrossOriginPreflightResultCache.cpp``. A check answers None (passed) or a :class:`Fail`:
a stable reason code and the engine's console message (without Chromium's "Access to fetch
at ..." prefix and WebKit's "Fetch API cannot load ..." line, which :mod:`corsadmin.engines`
adds).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.translation import gettext as _

from .fetches import (
    ACAC,
    ACAH,
    ACAM,
    ACAO,
    TOKEN,
    Answer,
    Fail,
    Fetch,
    count_header,
    get_header,
    method_allowed,
    normalise_method,
    ok_status,
    spelled,
    token_list,
    uncovered,
    unsafe_headers,
)

# --- Chromium -----------------------------------------------------------------------------

# Chromium 156's wording (seen in a real Chromium; cors_error_string.cc before it also suggested 'no-cors').
_CR_NO_CORS = " Have the server send the header with a valid value."
_CR_PREFLIGHT = "Response to preflight request doesn't pass access control check: "


def chromium_access(fetch: Fetch, answer: Answer, preflight: bool) -> Fail | None:
    include = fetch.credentials == "include"
    acao = get_header(answer, ACAO)
    pre = _CR_PREFLIGHT if preflight else ""
    if acao == "*":
        if not include:
            return None
        return Fail(
            "wildcard-with-credentials",
            pre + "The value of the 'Access-Control-Allow-Origin' header in the response must not be the "
            "wildcard '*' when the request's credentials mode is 'include'.",
        )
    if acao is None:
        return Fail(
            "missing-allow-origin",
            pre + "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
        )
    if acao != fetch.origin:
        if " " in acao or "," in acao:
            return Fail(
                "multiple-allow-origin",
                pre + f"The 'Access-Control-Allow-Origin' header contains multiple values '{acao}', but "
                "only one is allowed." + _CR_NO_CORS,
            )
        if acao != "null" and not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", acao):
            return Fail(
                "invalid-allow-origin",
                pre
                + f"The 'Access-Control-Allow-Origin' header contains the invalid value '{acao}'."
                + _CR_NO_CORS,
            )
        return Fail(
            "allow-origin-mismatch",
            pre + f"The 'Access-Control-Allow-Origin' header has a value '{acao}' that is not equal to "
            "the supplied origin." + _CR_NO_CORS,
        )
    if include and get_header(answer, ACAC) != "true":
        return Fail(
            "allow-credentials",
            pre + "The value of the 'Access-Control-Allow-Credentials' header in the response is "
            f"'{get_header(answer, ACAC) or ''}' which must be 'true' when the request's credentials "
            "mode is 'include'.",
        )
    return None


def chromium_preflight(fetch: Fetch, answer: Answer) -> Fail | None:
    failed = chromium_access(fetch, answer, preflight=True)
    if failed:
        return failed
    if not ok_status(answer.status):
        return Fail("preflight-status", _CR_PREFLIGHT + "It does not have HTTP ok status.")
    include = fetch.credentials == "include"
    methods = token_list(get_header(answer, ACAM))
    if methods is None:
        return Fail(
            "invalid-allow-methods",
            "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
        )
    headers = token_list(get_header(answer, ACAH))
    if headers is None:
        return Fail(
            "invalid-allow-headers",
            "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
        )
    method = normalise_method(fetch.method)
    if not method_allowed(method, methods, include):
        return Fail(
            "method", f"Method {method} is not allowed by Access-Control-Allow-Methods in preflight response."
        )
    # Chromium still lets `*` cover Authorization (deprecated; seen in Chromium 156).
    for name in uncovered(fetch, headers, include, authorization_wildcard=True):
        return Fail(
            "header",
            f"Request header field {name} is not allowed by Access-Control-Allow-Headers in preflight "
            "response.",
        )
    return None


# --- Firefox ------------------------------------------------------------------------------

_FF = "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "


def firefox_access(fetch: Fetch, answer: Answer) -> Fail | None:
    include = fetch.credentials == "include"
    url = fetch.url
    if count_header(answer, ACAO) > 1:
        return Fail(
            "multiple-allow-origin",
            _FF + f"{url}. (Reason: Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed).",
        )
    acao = get_header(answer, ACAO)
    if acao is None:
        return Fail(
            "missing-allow-origin",
            _FF + f"{url}. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing). "
            f"Status code: {answer.status}.",
        )
    if include and acao == "*":
        return Fail(
            "wildcard-with-credentials",
            _FF + f"‘{url}’. (Reason: Credential is not supported if the CORS header "
            "‘Access-Control-Allow-Origin’ is ‘*’).",
        )
    if (include or acao != "*") and acao != fetch.origin:
        return Fail(
            "allow-origin-mismatch",
            _FF + f"{url}. (Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘{acao}’).",
        )
    if include and get_header(answer, ACAC) != "true":
        return Fail(
            "allow-credentials",
            _FF + f"{url}. (Reason: expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’).",
        )
    return None


FIREFOX_AUTHORIZATION_WARNING = (
    "Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote resource at "
    "{url} soon. (Reason: When the `Access-Control-Allow-Headers` is `*`, the `Authorization` header is "
    "not covered. To include the `Authorization` header, it must be explicitly listed in CORS header "
    "`Access-Control-Allow-Headers`)."
)


def firefox_preflight(fetch: Fetch, answer: Answer) -> Fail | None:
    failed = firefox_access(fetch, answer)
    if failed:
        return failed
    url = fetch.url
    if not ok_status(answer.status):
        return Fail(
            "preflight-status",
            _FF + f"{url}. (Reason: CORS preflight response did not succeed). Status code: {answer.status}.",
        )
    include = fetch.credentials == "include"
    method = normalise_method(fetch.method)
    methods = [item.strip(" \t") for item in (get_header(answer, ACAM) or "").split(",")]
    for item in filter(None, methods):
        if not TOKEN.match(item):
            return Fail(
                "invalid-allow-methods",
                _FF
                + f"{url}. (Reason: invalid token ‘{item}’ in CORS header ‘Access-Control-Allow-Methods’).",
            )
    if not method_allowed(method, [item for item in methods if item], include):
        return Fail(
            "method",
            _FF + f"{url}. (Reason: Did not find method in CORS header ‘Access-Control-Allow-Methods’).",
        )
    headers = [item.strip(" \t") for item in (get_header(answer, ACAH) or "").split(",")]
    for item in filter(None, headers):
        if not TOKEN.match(item):
            return Fail(
                "invalid-allow-headers",
                _FF
                + f"{url}. (Reason: invalid token ‘{item}’ in CORS header ‘Access-Control-Allow-Headers’).",
            )
    for name in uncovered(fetch, [item for item in headers if item], include, authorization_wildcard=True):
        return Fail(
            "header",
            _FF + f"{url}. (Reason: header ‘{name}’ is not allowed according to header "
            "‘Access-Control-Allow-Headers’ from CORS preflight response).",
        )
    return None


def wildcard_covers_authorization(fetch: Fetch, preflight: Answer) -> bool:
    """Whether only `Access-Control-Allow-Headers: *` lets this fetch's Authorization through."""
    allowed = [item.strip(" \t").lower() for item in (get_header(preflight, ACAH) or "").split(",")]
    return (
        fetch.credentials != "include"
        and "*" in allowed
        and "authorization" in unsafe_headers(fetch)
        and "authorization" not in allowed
    )


def authorization_warning(engine: str, fetch: Fetch) -> str:
    """What an engine that lets `*` cover Authorization says of it (Firefox: its console warning)."""
    if engine == "firefox":
        return FIREFOX_AUTHORIZATION_WARNING.format(url=fetch.url)
    return _(
        "Chromium lets Access-Control-Allow-Headers: * cover Authorization for now (deprecated); the "
        "Fetch Standard, WebKit and soon Firefox do not: list Authorization by name."
    )


# --- WebKit -------------------------------------------------------------------------------


def webkit_access(fetch: Fetch, answer: Answer) -> Fail | None:
    include = fetch.credentials == "include"
    acao = get_header(answer, ACAO) or ""
    if acao == "*" and not include:
        return None
    if acao != fetch.origin:
        if acao == "*":
            return Fail(
                "wildcard-with-credentials",
                "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true.",
            )
        if "," in acao:
            return Fail(
                "multiple-allow-origin", "Access-Control-Allow-Origin cannot contain more than one origin."
            )
        reason = "missing-allow-origin" if get_header(answer, ACAO) is None else "allow-origin-mismatch"
        return Fail(
            reason,
            f"Origin {fetch.origin} is not allowed by Access-Control-Allow-Origin. "
            f"Status code: {answer.status}",
        )
    if include and get_header(answer, ACAC) != "true":
        return Fail(
            "allow-credentials",
            'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".',
        )
    return None


def webkit_preflight(fetch: Fetch, answer: Answer) -> Fail | None:
    if not ok_status(answer.status):
        return Fail("preflight-status", f"Preflight response is not successful. Status code: {answer.status}")
    failed = webkit_access(fetch, answer)
    if failed:
        return failed
    include = fetch.credentials == "include"
    methods = token_list(get_header(answer, ACAM))
    if methods is None:
        value = get_header(answer, ACAM)
        return Fail(
            "invalid-allow-methods", f"Header Access-Control-Allow-Methods has an invalid value: {value}"
        )
    headers = token_list(get_header(answer, ACAH))
    if headers is None:
        value = get_header(answer, ACAH)
        return Fail(
            "invalid-allow-headers", f"Header Access-Control-Allow-Headers has an invalid value: {value}"
        )
    method = normalise_method(fetch.method)
    if not method_allowed(method, methods, include):
        return Fail("method", f"Method {method} is not allowed by Access-Control-Allow-Methods.")
    names = spelled(fetch)
    for name in uncovered(fetch, headers, include, authorization_wildcard=False):
        return Fail(
            "header",
            f"Request header field {names.get(name, name)} is not allowed by Access-Control-Allow-Headers.",
        )
    return None


def webkit_message(fetch: Fetch, failed: Fail) -> Fail:
    # Safari prints the reason, then the line that names the URL.
    return failed._replace(
        message=f"{failed.message}\nFetch API cannot load {fetch.url} due to access control checks."
    )


CHECKS: dict[str, tuple[Callable[[Fetch, Answer], Fail | None], Callable[[Fetch, Answer], Fail | None]]] = {
    "chromium": (chromium_preflight, lambda fetch, answer: chromium_access(fetch, answer, preflight=False)),
    "firefox": (firefox_preflight, firefox_access),
    "webkit": (webkit_preflight, webkit_access),
}
