"""corsadmin.console_messages reads what each engine prints (the engines' own words, round trip)."""

from __future__ import annotations

import pytest

from corsadmin.console_messages import ConsoleMessage, Unreadable, read
from corsadmin.engines import Answer, Fetch, verdicts

PAGE = "https://app.example.com"
URL = "https://api.example.com/v1/items?page=2"
ALLOW = ("Access-Control-Allow-Origin", PAGE)

# (fetch, preflight, response, failed check): every engine's message for it must read back.
SCENARIOS = [
    (Fetch(PAGE, URL), None, Answer(200, ()), "missing-allow-origin"),
    (Fetch(PAGE, URL), None, Answer(200, (ALLOW, ALLOW)), "multiple-allow-origin"),
    (Fetch(PAGE, URL, credentials="include"), None, Answer(200, (ALLOW,)), "allow-credentials"),
    (
        Fetch(PAGE, URL, credentials="include"),
        None,
        Answer(200, (("Access-Control-Allow-Origin", "*"),)),
        "wildcard-with-credentials",
    ),
    (Fetch(PAGE, URL, "PUT"), Answer(403, (ALLOW,)), None, "preflight-status"),
    (
        Fetch(PAGE, URL, "patch"),
        Answer(200, (ALLOW, ("Access-Control-Allow-Methods", "PATCH"))),
        None,
        "method",
    ),
    (
        Fetch(PAGE, URL, "GET", ("X-Custom",)),
        Answer(200, (ALLOW, ("Access-Control-Allow-Headers", "content-type"))),
        None,
        "header",
    ),
]


@pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
@pytest.mark.parametrize("fetch,preflight,response,failed", SCENARIOS)
def test_each_engines_message_reads_back(
    engine: str, fetch: Fetch, preflight: Answer | None, response: Answer | None, failed: str
) -> None:
    verdict = verdicts(fetch, preflight, response)[engine]
    read_back = read(verdict.message)
    # WebKit words a missing Access-Control-Allow-Origin as one naming another origin.
    if engine == "webkit" and failed == "missing-allow-origin":
        failed = "origin-not-allowed"
    assert (read_back.engine, read_back.failed, read_back.url) == (engine, failed, URL)
    # Chromium names the page's origin; WebKit only when the origin was not allowed; Firefox never.
    names_origin = engine == "chromium" or (engine == "webkit" and failed == "origin-not-allowed")
    assert read_back.origin == (PAGE if names_origin else None)
    if failed in ("allow-credentials", "wildcard-with-credentials"):
        assert read_back.credentials == "include"
    if failed == "method" and engine != "firefox":  # Firefox does not name the method
        assert read_back.method == "patch"
    if failed == "header":
        assert [h.lower() for h in read_back.headers] == ["x-custom"]
    assert read_back.preflight is (failed in ("preflight-status", "method", "header"))


def test_a_wrapped_paste_with_typographic_quotes_and_the_network_line() -> None:
    text = (
        "Access to fetch at ‘https://api.example.com/x’ from origin\n  'https://app.example.com' has been "
        "blocked by CORS policy: Response to preflight request doesn't pass access control check: No\n"
        "'Access-Control-Allow-Origin' header is present on the requested resource.\n"
        "api.example.com/x:1  Failed to load resource: net::ERR_FAILED"
    )
    assert read(text) == ConsoleMessage(
        "chromium", "missing-allow-origin", "https://api.example.com/x", PAGE, None, (), None, True
    )


def test_xmlhttprequest_wording_says_credentials() -> None:
    text = (
        "Access to XMLHttpRequest at 'https://api.example.com/x' from origin 'https://app.example.com' has "
        "been blocked by CORS policy: The value of the 'Access-Control-Allow-Origin' header in the response "
        "must not be the wildcard '*' when the request's credentials mode is 'include'. The credentials mode "
        "of requests initiated by the XMLHttpRequest is controlled by the withCredentials attribute."
    )
    found = read(text)
    assert (found.failed, found.credentials) == ("wildcard-with-credentials", "include")


def test_firefox_authorization_warning_names_the_header() -> None:
    text = (
        "Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote resource at "
        "https://api.example.com/x soon. (Reason: When the `Access-Control-Allow-Headers` is `*`, the "
        "`Authorization` header is not covered. To include the `Authorization` header, it must be explicitly "
        "listed in CORS header `Access-Control-Allow-Headers`)."
    )
    found = read(text)
    assert (found.engine, found.failed, found.headers, found.url) == (
        "firefox",
        "header",
        ("Authorization",),
        "https://api.example.com/x",
    )


def test_safari_first_line_alone_names_no_url() -> None:
    found = read(
        "Origin https://app.example.com is not allowed by Access-Control-Allow-Origin. Status code: 200"
    )
    assert (found.engine, found.origin, found.url) == ("webkit", PAGE, None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "TypeError: Failed to fetch",
        "GET https://api.example.com/x net::ERR_FAILED 200 (OK)",
        "Access to fetch at 'https://a/x' from origin 'https://b' has been blocked by CORS policy: Odd.",
        "x" * 9000,
    ],
)
def test_what_is_no_cors_message_is_unreadable(text: str) -> None:
    with pytest.raises(Unreadable):
        read(text)
