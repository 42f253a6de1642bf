"""The probe's transport and the hosts it may reach (``corsadmin.probe``): loopback servers the
tests start (``tests/edge_proxy.py``, ``tests/proxy.py``), no site behind them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from corsadmin import probe
from corsadmin.fields import Refusal
from corsadmin.probe_settings import may_probe
from tests.edge_proxy import Fixed
from tests.proxy import Proxy

ORIGIN = "https://app.example.com"


@pytest.fixture
def probe_hosts(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 2.0}


@pytest.fixture
def fixed_ok() -> Iterator[Fixed]:
    server = Fixed(200, [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")])
    yield server
    server.close()


def refusal(**asked: Any) -> dict[str, list[str]]:
    with pytest.raises(Refusal) as caught:
        probe.question(**{"origin": ORIGIN, **asked})
    assert isinstance(caught.value.detail, dict)
    return caught.value.detail


def test_a_host_outside_the_setting_is_refused_and_nothing_is_sent(
    probe_hosts: None, fixed_ok: Fixed
) -> None:
    errors = refusal(url=fixed_ok.url("/", host="localhost"))
    assert list(errors) == ["url"]
    assert "localhost may not be probed" in errors["url"][0]
    assert fixed_ok.accepted == 0


def test_a_star_in_allowed_hosts_does_not_open_the_probe_to_every_host(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": None}
    assert "url" in refusal(url="http://169.254.169.254/latest/meta-data/")


def test_a_star_in_probe_hosts_counts_for_nothing(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["*", "api.example.com"]}
    assert "url" in refusal(url="http://internal.example.net/")
    assert may_probe("api.example.com")


def test_the_default_is_allowed_hosts_with_django_patterns(settings: Any) -> None:
    settings.ALLOWED_HOSTS = [".example.com", "127.0.0.1"]
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": None}
    assert [may_probe(h) for h in ("example.com", "api.example.com", "evil-example.com", "127.0.0.1")] == [
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"url": "ftp://127.0.0.1/"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/"}, "url"),
        ({"url": "http://127.0.0.1:99999/"}, "url"),
        ({"url": "/relative/"}, "url"),
        ({"url": "http://127.0.0.1/", "origin": "https://App.example.com"}, "origin"),
        ({"url": "http://127.0.0.1/", "origin": "https://app.example.com/path"}, "origin"),
        ({"url": "http://127.0.0.1/", "origin": "https://*.example.com"}, "origin"),
        ({"url": "http://127.0.0.1/", "method": "TRACE"}, "method"),
        ({"url": "http://127.0.0.1/", "method": "GE T"}, "method"),
        ({"url": "http://127.0.0.1/", "headers": ["Cookie: a=b"]}, "headers"),
        ({"url": "http://127.0.0.1/", "headers": ["Host: other"]}, "headers"),
        ({"url": "http://127.0.0.1/", "headers": ["Sec-Fetch-Mode: cors"]}, "headers"),
        ({"url": "http://127.0.0.1/", "headers": ["X-A: b\r\nX-B: c"]}, "headers"),
        ({"url": "http://127.0.0.1/", "credentials": "always"}, "credentials"),
    ],
)
def test_bad_input_is_refused_by_field(probe_hosts: None, asked: dict[str, Any], field: str) -> None:
    assert list(refusal(**asked)) == [field]


def test_fetch_normalises_only_the_six_methods(probe_hosts: None) -> None:
    asked = [probe.question("http://127.0.0.1/", ORIGIN, m) for m in ("put", "patch", "Get")]
    assert [q.wire_method for q in asked] == ["PUT", "patch", "GET"]


def test_the_answer_keeps_duplicate_headers_as_received(probe_hosts: None) -> None:
    server = Fixed(
        200, [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Origin", "*"), ("X-Other", "1")]
    )
    try:
        answer = probe.exchange(server.url("/"), "GET", [("Origin", ORIGIN)], time.monotonic() + 2)
    finally:
        server.close()
    assert (answer.status, answer.headers, answer.error) == (
        200,
        (("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Origin", "*")),
        None,
    )


def test_a_hanging_server_is_given_up_after_the_timeout(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 0.5}
    hanging = Proxy("127.0.0.1", 9)
    hanging.hang()
    try:
        started = time.monotonic()
        answer, _origin = probe.follow(
            probe.question(f"http://127.0.0.1:{hanging.port}/", ORIGIN), started + 0.5
        )
        took = time.monotonic() - started
    finally:
        hanging.close()
    assert answer.error == {"code": "timeout", "detail": "No answer within 0.5 s."}
    assert 0.45 <= took < 1.0


def test_a_redirect_to_a_host_outside_the_setting_is_not_followed(probe_hosts: None, fixed_ok: Fixed) -> None:
    redirect = Fixed(302, [("Location", fixed_ok.url("/elsewhere/", host="localhost"))])
    try:
        answer, _origin = probe.follow(probe.question(redirect.url("/"), ORIGIN), time.monotonic() + 2)
    finally:
        redirect.close()
    assert (answer.status, answer.error["code"] if answer.error else None, answer.redirects) == (
        302,
        "redirect-refused",
        [],
    )
    assert fixed_ok.accepted == 0


def test_a_redirect_to_another_scheme_is_not_followed(probe_hosts: None) -> None:
    redirect = Fixed(301, [("Location", "file:///etc/passwd")])
    try:
        answer, _origin = probe.follow(probe.question(redirect.url("/"), ORIGIN), time.monotonic() + 2)
    finally:
        redirect.close()
    assert answer.error is not None and answer.error["code"] == "redirect-refused"


def test_a_redirect_to_another_allowed_origin_is_followed_with_a_null_origin(
    probe_hosts: None, fixed_ok: Fixed
) -> None:
    redirect = Fixed(307, [("Location", fixed_ok.url("/next/"))])
    try:
        answer, origin = probe.follow(probe.question(redirect.url("/"), ORIGIN), time.monotonic() + 2)
    finally:
        redirect.close()
    assert (answer.url, answer.status, answer.redirects, origin) == (
        fixed_ok.url("/next/"),
        200,
        [{"status": 307, "location": fixed_ok.url("/next/")}],
        "null",
    )
    assert ("Origin", "null") in answer.sent


def test_redirects_are_followed_at_most_the_setting(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_MAX_REDIRECTS": 2}
    loop = Fixed(302, [("Location", "/again/")])
    try:
        answer, _origin = probe.follow(probe.question(loop.url("/"), ORIGIN), time.monotonic() + 2)
    finally:
        loop.close()
    assert answer.error is not None and answer.error["code"] == "redirects"
    assert loop.accepted == 3


def test_at_most_max_bytes_of_the_body_are_read(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_MAX_BYTES": 1000}
    big = BodyServer(b"x" * 100_000)
    try:
        answer = probe.exchange(big.url("/"), "GET", [], time.monotonic() + 2)
    finally:
        big.close()
    assert (answer.status, answer.body_bytes, answer.truncated) == (200, 1000, True)


def test_a_refused_connection_is_said(probe_hosts: None) -> None:
    server = Fixed(200, [])
    port = server.port
    server.close()
    answer = probe.exchange(f"http://127.0.0.1:{port}/", "GET", [], time.monotonic() + 2)
    assert answer.error == {"code": "refused", "detail": "The connection was refused."}


class BodyServer(Fixed):
    def __init__(self, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response_only(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.start(Handler)


@pytest.mark.parametrize(
    ("setting", "ids"),
    [
        ({}, []),
        ({"PROBE_HOSTS": ["api.example.com", ".cdn.example.com"]}, []),
        ({"PROBE_HOSTS": "api.example.com"}, ["corsadmin.E020"]),
        ({"PROBE_HOSTS": ["*"]}, ["corsadmin.W016"]),
        ({"PROBE_TIMEOUT": 0}, ["corsadmin.E020"]),
        ({"PROBE_MAX_BYTES": 1.5}, ["corsadmin.E020"]),
        ({"PROBE_MAX_REDIRECTS": -1}, ["corsadmin.E020"]),
        ({"PROBE_MAX_REDIRECTS": 0}, []),
    ],
)
def test_the_probe_settings_are_checked(settings: Any, setting: dict[str, Any], ids: list[str]) -> None:
    from corsadmin.probe_settings import check_probe_settings

    settings.CORSADMIN = {**settings.CORSADMIN, **setting}
    assert [message.id for message in check_probe_settings()] == ids


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"url": "http://127.0.0.1/b\u00fccher"}, "url"),
        ({"url": "http://127.0.0.1/a b"}, "url"),
        ({"url": "http://127.0.0.1/\ta"}, "url"),
        ({"url": "http://127.0.0.1/", "headers": ["X-A: caf\u00e9"]}, "headers"),
        ({"url": "http://127.0.0.1/", "headers": ["X-A: a\x7fb"]}, "headers"),
    ],
)
def test_what_cannot_be_sent_as_written_is_refused(
    probe_hosts: None, asked: dict[str, Any], field: str
) -> None:
    """Non-ASCII (send the punycode host and a percent-encoded path) and control characters."""
    assert list(refusal(**asked)) == [field]


def test_every_address_of_a_host_is_tried(probe_hosts: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose first address refuses (``localhost`` as ::1, say) is reached at the next one."""
    import socket

    server, closed = Fixed(200, []), Fixed(200, [])
    closed.close()
    first = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", closed.port))
    second = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [first, second])
    try:
        answer = probe.exchange(server.url("/"), "GET", [], time.monotonic() + 2)
    finally:
        server.close()
    assert (answer.status, answer.error, server.accepted) == (200, None, 1)


def test_a_server_trickling_its_answer_is_given_up_after_the_timeout(settings: Any) -> None:
    """One byte every 50 ms never lets a read time out: the probe's deadline cuts it all the same."""
    import socket
    import threading

    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 0.5}
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        client, _ = listener.accept()
        client.sendall(b"HTTP/1.1 200 OK\r\n")
        try:
            while not stop.wait(0.05):
                client.sendall(b"X")
        except OSError:
            pass
        client.close()

    threading.Thread(target=trickle, daemon=True).start()
    try:
        started = time.monotonic()
        answer = probe.exchange(f"http://127.0.0.1:{listener.getsockname()[1]}/", "GET", [], started + 0.5)
        took = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert answer.error == {"code": "timeout", "detail": "No answer within 0.5 s."}
    assert 0.45 <= took < 1.0
