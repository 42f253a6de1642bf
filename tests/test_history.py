"""History shows old -> new values, in the same words for admin, API and CLI changes."""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management import call_command

from corsadmin import history
from corsadmin.history import values_of
from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.test_admin import origin_form

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
WORDS = ("Changed Enabled.", "Enabled: yes → no")


@pytest.fixture
def entry():
    return AllowedOrigin.objects.create(origin=APP)


def last_change() -> tuple[str, str]:
    log = LogEntry.objects.filter(action_flag=CHANGE).latest("pk")
    return log.get_change_message(), values_of(log.change_message)


def test_admin_form_change(admin_client, entry):
    data = origin_form(Policy.objects.get(name="default"), APP)
    data.pop("enabled")
    data["initial-policy"] = data["policy"]  # as the browser posts it (a callable default)
    admin_client.post(f"/admin/corsadmin/allowedorigin/{entry.pk}/change/", data)
    assert last_change() == WORDS


def test_admin_bulk_action(admin_client, entry):
    admin_client.post(
        "/admin/corsadmin/allowedorigin/", {"action": "disable", "_selected_action": [entry.pk]}
    )
    assert last_change() == WORDS


def test_api_change(full_client, entry):
    full_client.patch(f"{API}origins/{entry.pk}/", {"enabled": False}, format="json")
    assert last_change() == WORDS


def test_cli_change(entry, admin_user):
    call_command("cors", "disable", APP, "--user", admin_user.username, stdout=io.StringIO())
    assert last_change() == WORDS


def test_a_move_names_the_policies(admin_client, entry):
    Policy.objects.create(name="partners")
    admin_client.post(
        "/admin/corsadmin/allowedorigin/",
        {"action": "move_to_policy", "_selected_action": [entry.pk], "apply": "1", "policy": "partners"},
    )
    assert last_change() == ("Changed Policy.", "Policy: default → partners")


def test_the_history_page_shows_the_values(admin_client, entry):
    admin_client.post(
        "/admin/corsadmin/allowedorigin/", {"action": "disable", "_selected_action": [entry.pk]}
    )
    content = admin_client.get(f"/admin/corsadmin/allowedorigin/{entry.pk}/history/").content.decode()
    assert '<br><span class="change-values">Enabled: yes → no</span>' in content


def test_an_import_summary_on_a_site_without_the_admin_is_one_line(caplog):
    policy = Policy.objects.get(name="default")
    added = [f"https://o{i}.example.com" for i in range(22)]
    message = history.summary_message([], added, [(APP, ["Note"])], ["null"])
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        history._log_line(7, [policy], history.CHANGE, message)
    (line,) = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "history"]
    assert line.startswith("corsadmin: changed policy 'default'")
    assert "added allowed origin https://o19.example.com; added allowed origins and 2 more" in line
    assert f"changed allowed origin {APP}; deleted allowed origin null" in line
