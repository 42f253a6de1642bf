"""``manage.py cors probe``: what the API's ``probe/`` answers, as text or JSON; exit 0 when every
engine allows and nothing disagrees, 1 otherwise, 2 bad input (nothing sent)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_runner import run_cors
from tests.edge_proxy import Fixed

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"


@pytest.fixture
def probe_hosts(settings: Any) -> None:
    # 127.0.0.1 is probed but is no host of this site: nothing to compare with.
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 2.0}


@pytest.fixture
def allowing() -> Iterator[Fixed]:
    server = Fixed(200, [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")])
    yield server
    server.close()


def test_every_engine_allowing_exits_0_and_prints_the_answer(probe_hosts: None, allowing: Fixed) -> None:
    ran = run_cors("probe", allowing.url("/items/"), "--origin", ORIGIN)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.splitlines() == [
        f"url:       {allowing.url('/items/')}",
        f"origin:    {ORIGIN}",
        "method:    GET (credentials: same-origin)",
        "preflight: not needed",
        "response:  GET 200",
        f"  Access-Control-Allow-Origin: {ORIGIN}",
        "  Vary: Origin",
        "engines:",
        "  chromium allowed",
        "  firefox  allowed",
        "  webkit   allowed",
        "corsadmin: (this site does not serve the URL's host)",
        "disagreements: none",
    ]


def test_a_refusing_engine_exits_1_with_the_reason(probe_hosts: None, allowing: Fixed) -> None:
    ran = run_cors("probe", allowing.url(), "--origin", ORIGIN, "--credentials")
    assert ran.returncode == 1
    assert "credentials: include" in ran.stdout
    assert ran.stderr == "CommandError: refused by chromium, firefox, webkit\n"


def test_json_prints_what_the_api_answers(probe_hosts: None, allowing: Fixed) -> None:
    ran = run_cors(
        "probe", allowing.url(), "--origin", ORIGIN, "--method", "patch", "--header", "X-Token: 1", "--json"
    )
    result = json.loads(ran.stdout)
    assert (result["method"], result["headers"], result["preflight"]["sent"][1:]) == (
        "patch",
        ["x-token"],
        [["Access-Control-Request-Method", "patch"], ["Access-Control-Request-Headers", "x-token"]],
    )
    assert (ran.returncode, ran.stderr) == (1, "")  # the preflight lists no method: refused, said in the JSON


def test_a_host_outside_the_setting_exits_2_in_one_line_and_sends_nothing(
    probe_hosts: None, allowing: Fixed
) -> None:
    ran = run_cors("probe", allowing.url(host="localhost"), "--origin", ORIGIN)
    assert ran.returncode == 2
    assert ran.stderr.startswith("CommandError: url: localhost may not be probed")
    assert ran.stderr.count("\n") == 1
    assert allowing.accepted == 0


def test_a_bad_credentials_mode_exits_2(probe_hosts: None, allowing: Fixed) -> None:
    ran = run_cors("probe", allowing.url(), "--origin", ORIGIN, "--credentials", "always")
    assert (ran.returncode, ran.stderr) == (
        2,
        "CommandError: credentials: Give omit, same-origin or include.\n",
    )
