"""corsadmin.engines: each engine's verdict on a fetch, given the answers, as tables."""

from __future__ import annotations

import pytest

from corsadmin.engines import Answer, Fetch, Verdict, cached_seconds, needs_preflight, verdicts

PAGE = "https://app.example.com"
URL = "https://api.example.com/data"
CR = f"Access to fetch at '{URL}' from origin '{PAGE}' has been blocked by CORS policy: "
CR_PRE = CR + "Response to preflight request doesn't pass access control check: "
CR_NO_CORS = " Have the server send the header with a valid value."
FF_BLOCKED = "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
FF = FF_BLOCKED + f"{URL}. "
WK_TAIL = f"\nFetch API cannot load {URL} due to access control checks."


def answer(*headers: tuple[str, str], status: int = 200) -> Answer:
    return Answer(status, tuple(headers))


ALLOW = ("Access-Control-Allow-Origin", PAGE)
STAR = ("Access-Control-Allow-Origin", "*")
CREDS = ("Access-Control-Allow-Credentials", "true")


@pytest.mark.parametrize(
    "method,headers,credentials,expected",
    [
        ("GET", (), "omit", False),
        ("get", (), "same-origin", False),  # normalised to GET
        ("post", ("Accept", "Content-Language"), "include", False),
        ("POST", ("Content-Type: text/plain; charset=utf-8",), "omit", False),
        ("POST", ("Content-Type",), "omit", True),  # a bare Content-Type counts as a JSON body
        ("POST", ("Content-Type: application/json",), "omit", True),
        ("GET", ("X-Custom",), "omit", True),
        ("GET", ("Cookie", "Origin", "Sec-Fetch-Mode", "Proxy-Authorization"), "omit", False),  # forbidden
        ("PUT", (), "omit", True),
        ("patch", (), "omit", True),
        ("delete", (), "omit", True),
        ("HEAD", ("Accept: {json}",), "omit", True),  # an unsafe byte in Accept
    ],
)
def test_needs_preflight(method: str, headers: tuple[str, ...], credentials: str, expected: bool) -> None:
    assert needs_preflight(Fetch(PAGE, URL, method, headers, credentials)) is expected


def test_same_origin_fetch_needs_no_preflight_and_is_allowed() -> None:
    fetch = Fetch("https://api.example.com", URL, "PUT", ("X-Custom",), "include")
    assert needs_preflight(fetch) is False
    assert {name: v.allowed for name, v in verdicts(fetch, None, answer()).items()} == dict.fromkeys(
        ("chromium", "firefox", "webkit"), True
    )


# The actual response of a simple GET: (credentials, response headers) → the three messages
# ("" = allowed).
RESPONSE_TABLE = [
    ("omit", (ALLOW,), ("", "", "")),
    ("omit", (STAR,), ("", "", "")),
    ("same-origin", (STAR, CREDS), ("", "", "")),
    ("include", (ALLOW, CREDS), ("", "", "")),
    (
        "omit",
        (),
        (
            CR + "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
            FF + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 200.",
            f"Origin {PAGE} is not allowed by Access-Control-Allow-Origin. Status code: 200" + WK_TAIL,
        ),
    ),
    (
        "include",
        (STAR, CREDS),
        (
            CR + "The value of the 'Access-Control-Allow-Origin' header in the response must not be the "
            "wildcard '*' when the request's credentials mode is 'include'.",
            FF_BLOCKED + f"‘{URL}’. (Reason: Credential is not supported if the CORS header "
            "‘Access-Control-Allow-Origin’ is ‘*’).",
            "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true." + WK_TAIL,
        ),
    ),
    (
        "include",
        (ALLOW,),
        (
            CR
            + "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which must "
            "be 'true' when the request's credentials mode is 'include'.",
            FF + "(Reason: expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’).",
            'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".' + WK_TAIL,
        ),
    ),
    (
        "include",
        (ALLOW, ("Access-Control-Allow-Credentials", "True")),  # exactly `true`
        (
            CR + "The value of the 'Access-Control-Allow-Credentials' header in the response is 'True' which "
            "must be 'true' when the request's credentials mode is 'include'.",
            FF + "(Reason: expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’).",
            'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".' + WK_TAIL,
        ),
    ),
    (
        "omit",
        (ALLOW, ALLOW),  # a proxy added the header again
        (
            CR + f"The 'Access-Control-Allow-Origin' header contains multiple values '{PAGE}, {PAGE}', but "
            "only one is allowed." + CR_NO_CORS,
            FF + "(Reason: Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed).",
            "Access-Control-Allow-Origin cannot contain more than one origin." + WK_TAIL,
        ),
    ),
    (
        "omit",
        (("Access-Control-Allow-Origin", "https://other.example.com"),),
        (
            CR
            + "The 'Access-Control-Allow-Origin' header has a value 'https://other.example.com' that is not "
            "equal to the supplied origin." + CR_NO_CORS,
            FF
            + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘https://other.example.com’).",
            f"Origin {PAGE} is not allowed by Access-Control-Allow-Origin. Status code: 200" + WK_TAIL,
        ),
    ),
    (
        "omit",
        (("Access-Control-Allow-Origin", "app.example.com"),),
        (
            CR
            + "The 'Access-Control-Allow-Origin' header contains the invalid value 'app.example.com'."
            + CR_NO_CORS,
            FF + "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘app.example.com’).",
            f"Origin {PAGE} is not allowed by Access-Control-Allow-Origin. Status code: 200" + WK_TAIL,
        ),
    ),
]


@pytest.mark.parametrize("credentials,headers,messages", RESPONSE_TABLE)
def test_response_check(
    credentials: str, headers: tuple[tuple[str, str], ...], messages: tuple[str, ...]
) -> None:
    result = verdicts(Fetch(PAGE, URL, "GET", (), credentials), None, answer(*headers))
    assert tuple(result[name].message for name in ("chromium", "firefox", "webkit")) == messages
    assert all(
        result[name].allowed is (message == "") for name, message in zip(result, messages, strict=True)
    )


PUT = ("Access-Control-Allow-Methods", "GET, PUT, PATCH")


# A preflighted fetch: (method, headers, credentials, preflight) → the three messages ("" = allowed).
PREFLIGHT_TABLE = [
    ("PUT", (), "omit", answer(ALLOW, PUT), ("", "", "")),
    (
        "put",
        ("X-Custom",),
        "omit",
        answer(ALLOW, PUT, ("Access-Control-Allow-Headers", "x-custom")),
        ("", "", ""),
    ),
    (
        "PUT",
        (),
        "omit",
        answer(ALLOW, PUT, status=403),
        (
            CR_PRE + "It does not have HTTP ok status.",
            FF + "(Reason: CORS preflight response did not succeed). Status code: 403.",
            "Preflight response is not successful. Status code: 403" + WK_TAIL,
        ),
    ),
    (
        "PUT",
        (),
        "omit",
        answer(status=404),  # Chromium and Firefox check the origin first, WebKit the status
        (
            CR_PRE + "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
            FF + "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 404.",
            "Preflight response is not successful. Status code: 404" + WK_TAIL,
        ),
    ),
    (
        "patch",  # fetch() leaves it lower-case; `PATCH` does not match
        (),
        "omit",
        answer(ALLOW, PUT),
        (
            CR + "Method patch is not allowed by Access-Control-Allow-Methods in preflight response.",
            FF + "(Reason: Did not find method in CORS header ‘Access-Control-Allow-Methods’).",
            "Method patch is not allowed by Access-Control-Allow-Methods." + WK_TAIL,
        ),
    ),
    ("DELETE", (), "omit", answer(ALLOW, ("Access-Control-Allow-Methods", "*")), ("", "", "")),
    (
        "DELETE",  # `*` counts only without credentials
        (),
        "include",
        answer(ALLOW, CREDS, ("Access-Control-Allow-Methods", "*")),
        (
            CR + "Method DELETE is not allowed by Access-Control-Allow-Methods in preflight response.",
            FF + "(Reason: Did not find method in CORS header ‘Access-Control-Allow-Methods’).",
            "Method DELETE is not allowed by Access-Control-Allow-Methods." + WK_TAIL,
        ),
    ),
    (
        "GET",
        ("X-Custom",),
        "omit",
        answer(ALLOW, ("Access-Control-Allow-Headers", "content-type")),
        (
            CR + "Request header field x-custom is not allowed by Access-Control-Allow-Headers in preflight "
            "response.",
            FF
            + "(Reason: header ‘x-custom’ is not allowed according to header ‘Access-Control-Allow-Headers’ "
            "from CORS preflight response).",
            "Request header field X-Custom is not allowed by Access-Control-Allow-Headers." + WK_TAIL,
        ),
    ),
    ("GET", ("X-Custom",), "omit", answer(ALLOW, ("Access-Control-Allow-Headers", "*")), ("", "", "")),
    (
        "GET",  # the standard never lets `*` cover Authorization; Chromium and Firefox still do
        ("Authorization",),
        "omit",
        answer(ALLOW, ("Access-Control-Allow-Headers", "*")),
        (
            "",
            "",
            "Request header field Authorization is not allowed by Access-Control-Allow-Headers." + WK_TAIL,
        ),
    ),
    (
        "GET",
        ("Authorization",),
        "omit",
        answer(ALLOW, ("Access-Control-Allow-Headers", "*, Authorization")),
        ("", "", ""),
    ),
    (
        "GET",  # with credentials `*` is a header named "*", for Authorization too
        ("Authorization",),
        "include",
        answer(ALLOW, CREDS, ("Access-Control-Allow-Headers", "*")),
        (
            CR + "Request header field authorization is not allowed by Access-Control-Allow-Headers in "
            "preflight response.",
            FF + "(Reason: header ‘authorization’ is not allowed according to header "
            "‘Access-Control-Allow-Headers’ from CORS preflight response).",
            "Request header field Authorization is not allowed by Access-Control-Allow-Headers." + WK_TAIL,
        ),
    ),
    (
        "GET",  # with credentials `*` is a header named "*"
        ("X-Custom",),
        "include",
        answer(ALLOW, CREDS, ("Access-Control-Allow-Headers", "*")),
        (
            CR + "Request header field x-custom is not allowed by Access-Control-Allow-Headers in preflight "
            "response.",
            FF
            + "(Reason: header ‘x-custom’ is not allowed according to header ‘Access-Control-Allow-Headers’ "
            "from CORS preflight response).",
            "Request header field X-Custom is not allowed by Access-Control-Allow-Headers." + WK_TAIL,
        ),
    ),
    (
        "PUT",
        (),
        "include",
        answer(ALLOW, PUT),  # the preflight needs ACAC too
        (
            CR_PRE + "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which "
            "must be 'true' when the request's credentials mode is 'include'.",
            FF + "(Reason: expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’).",
            'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".' + WK_TAIL,
        ),
    ),
    (
        "PUT",
        (),
        "omit",
        answer(ALLOW, ("Access-Control-Allow-Methods", "PUT; GET")),
        (
            CR + "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
            FF + "(Reason: invalid token ‘PUT; GET’ in CORS header ‘Access-Control-Allow-Methods’).",
            "Header Access-Control-Allow-Methods has an invalid value: PUT; GET" + WK_TAIL,
        ),
    ),
]


@pytest.mark.parametrize("method,headers,credentials,preflight,messages", PREFLIGHT_TABLE)
def test_preflight_check(
    method: str, headers: tuple[str, ...], credentials: str, preflight: Answer, messages: tuple[str, ...]
) -> None:
    fetch = Fetch(PAGE, URL, method, headers, credentials)
    response = answer(ALLOW, CREDS)
    result = verdicts(fetch, preflight, response)
    assert tuple(result[name].message for name in ("chromium", "firefox", "webkit")) == messages
    for name, message in zip(("chromium", "firefox", "webkit"), messages, strict=True):
        assert result[name].stage == ("preflight" if message else "")


def test_chromium_and_firefox_warn_when_the_wildcard_covers_authorization() -> None:
    fetch = Fetch(PAGE, URL, "GET", ("Authorization",), "omit")
    result = verdicts(fetch, answer(ALLOW, ("Access-Control-Allow-Headers", "*")), answer(ALLOW))
    warning = (
        "Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote resource "
        f"at {URL} soon. (Reason: When the `Access-Control-Allow-Headers` is `*`, the `Authorization` "
        "header is not covered. To include the `Authorization` header, it must be explicitly listed in "
        "CORS header `Access-Control-Allow-Headers`)."
    )
    assert result["firefox"].warnings == (warning,)
    chromium = (
        "Chromium lets Access-Control-Allow-Headers: * cover Authorization for now (deprecated); the Fetch "
        "Standard, WebKit and soon Firefox do not: list Authorization by name."
    )
    assert result["chromium"].warnings == (chromium,)
    assert result["webkit"].reason == "header"


@pytest.mark.parametrize(
    "value,seconds",
    [
        (None, {"chromium": 5, "firefox": 5, "webkit": 5}),
        ("0", {"chromium": 0, "firefox": 0, "webkit": 0}),
        ("600", {"chromium": 600, "firefox": 600, "webkit": 600}),
        ("7200", {"chromium": 7200, "firefox": 7200, "webkit": 600}),
        ("86400", {"chromium": 7200, "firefox": 86400, "webkit": 600}),
        ("100000", {"chromium": 7200, "firefox": 86400, "webkit": 600}),
        ("ten", {"chromium": 5, "firefox": 0, "webkit": 5}),
    ],
)
def test_max_age_caps(value: str | None, seconds: dict[str, int]) -> None:
    assert {engine: cached_seconds(engine, value) for engine in seconds} == seconds


def test_a_max_age_above_the_cap_is_a_warning_not_a_refusal() -> None:
    fetch = Fetch(PAGE, URL, "PUT")
    preflight = answer(ALLOW, PUT, ("Access-Control-Max-Age", "86400"))
    result = verdicts(fetch, preflight, answer(ALLOW))
    assert [v.allowed for v in result.values()] == [True, True, True]
    assert [v.max_age for v in result.values()] == [7200, 86400, 600]
    assert result["chromium"].warnings == (
        "Access-Control-Max-Age 86400 is above Chromium's cap: it repeats the preflight after 7200 seconds.",
    )
    assert result["firefox"].warnings == ()
    assert result["webkit"].warnings == (
        "Access-Control-Max-Age 86400 is above WebKit's cap: it repeats the preflight after 600 seconds.",
    )


def test_the_response_is_checked_after_a_passing_preflight() -> None:
    fetch = Fetch(PAGE, URL, "PUT", (), "include")
    preflight = answer(ALLOW, CREDS, PUT)
    result = verdicts(fetch, preflight, answer(ALLOW))
    assert result["chromium"] == Verdict(
        False,
        CR + "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which must be "
        "'true' when the request's credentials mode is 'include'.",
        "allow-credentials",
        "response",
        (),
        5,
    )


def test_no_response_after_a_preflight_one_engine_passes() -> None:
    fetch = Fetch(PAGE, URL, "GET", ("Authorization",), "omit")
    result = verdicts(fetch, answer(ALLOW, ("Access-Control-Allow-Headers", "*")), None)
    assert result["webkit"].reason == "header"
    assert (result["firefox"].allowed, result["firefox"].reason) == (False, "no-response")


def test_a_needed_preflight_must_be_given() -> None:
    with pytest.raises(ValueError):
        verdicts(Fetch(PAGE, URL, "PUT"), None, answer(ALLOW))


def test_an_unknown_credentials_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        verdicts(Fetch(PAGE, URL, credentials="always"), None, answer(ALLOW))
