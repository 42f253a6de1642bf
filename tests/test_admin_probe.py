"""The admin's Probe page: behind ``corsadmin.probe_edge``, a POST form whose errors are the
probe's field errors (nothing sent), and the probe's answer shown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from corsadmin.models import AllowedOrigin
from tests.api_fixtures import make_user
from tests.edge_proxy import Fixed

pytestmark = pytest.mark.django_db

PROBE = "/admin/corsadmin/allowedorigin/probe/"
ORIGIN = "https://app.example.com"


@pytest.fixture
def probe_hosts(settings: Any) -> None:
    settings.CORSADMIN = {**settings.CORSADMIN, "PROBE_HOSTS": ["127.0.0.1"], "PROBE_TIMEOUT": 2.0}


@pytest.fixture
def server() -> Iterator[Fixed]:
    acao = ("Access-Control-Allow-Origin", ORIGIN)
    fixed = Fixed(200, [acao, acao, ("Vary", "Origin")])
    yield fixed
    fixed.close()


def staff(*codenames: str) -> Client:
    user = make_user("staff-" + "-".join(codenames), *codenames)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_without_the_probe_permission_the_page_is_forbidden(probe_hosts: None, server: Fixed) -> None:
    client = staff("view_allowedorigin")
    assert client.get(PROBE).status_code == 403
    assert client.post(PROBE, {"url": server.url(), "origin": ORIGIN, "method": "GET"}).status_code == 403
    assert server.accepted == 0


def test_the_link_shows_only_with_the_permission() -> None:
    link = b'id="corsadmin-probe-link"'
    assert link not in staff("view_allowedorigin").get("/admin/corsadmin/allowedorigin/").content
    assert link in staff("view_allowedorigin", "probe_edge").get("/admin/corsadmin/allowedorigin/").content


def test_the_form_is_shown_and_sends_nothing(probe_hosts: None, server: Fixed) -> None:
    response = staff("view_allowedorigin", "probe_edge").get(PROBE)
    assert (response.status_code, b'id="probe-form"' in response.content, server.accepted) == (200, True, 0)


def test_a_host_outside_the_setting_is_a_form_error(probe_hosts: None, server: Fixed) -> None:
    client = staff("view_allowedorigin", "probe_edge")
    response = client.post(
        PROBE, {"url": server.url(host="localhost"), "origin": ORIGIN, "method": "GET", "credentials": "omit"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["url"][0].startswith("localhost may not be probed")
    assert server.accepted == 0


def test_the_answer_names_the_disagreement_and_the_engines(probe_hosts: None, server: Fixed) -> None:
    AllowedOrigin.objects.create(origin=ORIGIN)  # corsadmin allows it, as the edge does
    client = staff("view_allowedorigin", "probe_edge")
    body = {
        "url": server.url(),
        "origin": ORIGIN,
        "method": "GET",
        "headers": "",
        "credentials": "same-origin",
    }
    response = client.post(PROBE, body)
    assert response.status_code == 200
    assert [d["kind"] for d in response.context["result"]["disagreements"]] == ["duplicate-allow-origin"]
    assert b"<code>duplicate-allow-origin</code>" in response.content
    assert b'<th>chromium</th>\n      <td class="refused">' in response.content
