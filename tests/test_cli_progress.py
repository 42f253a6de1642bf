"""`manage.py cors import/export/import-settings`: a progress bar on a terminal, nothing otherwise."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command

from corsadmin import progress
from corsadmin.models import AllowedOrigin, Policy

pytestmark = pytest.mark.django_db

ORIGINS = ["https://a.example.com", "https://b.example.com", "https://c.example.com"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def final_lines(stderr: str) -> list[str]:
    """What a terminal shows at the end: the last state of each bar (tqdm redraws with \\r)."""
    return [line.rsplit("\r", 1)[-1].strip() for line in stderr.split("\n") if line.strip()]


def bar(stage: str, done: int) -> re.Pattern[str]:
    return re.compile(rf"{stage}: 100%\|[#█]+\| {done}/{done} \[.*origin/s\]")  # ASCII without an encoding


@pytest.fixture
def three_origins():
    policy = Policy.objects.get(name="default")
    for origin in ORIGINS:
        AllowedOrigin.objects.create(policy=policy, origin=origin)


def run_cors(*args: str, stderr: io.StringIO, **options: object) -> str:
    out = io.StringIO()
    call_command("cors", *args, stdout=out, stderr=stderr, **options)
    return out.getvalue()


@pytest.mark.usefixtures("three_origins")
def test_export_shows_a_bar_on_a_terminal(tmp_path):
    stderr = Terminal()
    run_cors("export", str(tmp_path / "cors.json"), stderr=stderr)
    [line] = final_lines(stderr.getvalue())
    assert bar("exporting", 3).fullmatch(line), line


@pytest.mark.usefixtures("three_origins")
def test_export_is_quiet_when_stderr_is_not_a_terminal(tmp_path):
    stderr = io.StringIO()
    run_cors("export", str(tmp_path / "cors.json"), stderr=stderr)
    assert stderr.getvalue() == ""


@pytest.mark.usefixtures("three_origins")
def test_export_quiet_hides_the_bar_on_a_terminal(tmp_path):
    stderr = Terminal()
    run_cors("export", str(tmp_path / "cors.json"), "--quiet", stderr=stderr)
    assert stderr.getvalue() == ""


@pytest.mark.usefixtures("three_origins")
def test_verbosity_0_hides_the_bar_on_a_terminal(tmp_path):
    stderr = Terminal()
    run_cors("export", str(tmp_path / "cors.json"), stderr=stderr, verbosity=0)
    assert stderr.getvalue() == ""


@pytest.mark.usefixtures("three_origins")
def test_export_to_stdout_keeps_the_bar_out_of_the_document():
    stderr = Terminal()
    document = json.loads(run_cors("export", stderr=stderr))
    assert [o["origin"] for o in document["policies"][0]["origins"]] == ORIGINS
    assert bar("exporting", 3).fullmatch(final_lines(stderr.getvalue())[0])


def document_with(origins: list[str]) -> dict:
    return {"version": 1, "policies": [{"name": "default", "origins": [{"origin": o} for o in origins]}]}


def test_import_shows_checking_then_writing_on_a_terminal(tmp_path):
    path = tmp_path / "cors.json"
    path.write_text(json.dumps(document_with(ORIGINS)))
    stderr = Terminal()
    run_cors("import", str(path), stderr=stderr)
    lines = final_lines(stderr.getvalue())
    assert [
        bool(bar(stage, 3).fullmatch(line))
        for stage, line in zip(["checking", "writing"], lines, strict=False)
    ] == [
        True,
        True,
    ], lines


def test_import_is_quiet_when_stderr_is_not_a_terminal(tmp_path):
    path = tmp_path / "cors.json"
    path.write_text(json.dumps(document_with(ORIGINS)))
    stderr = io.StringIO()
    run_cors("import", str(path), stderr=stderr)
    assert stderr.getvalue() == ""


def test_import_settings_shows_adding_on_a_terminal(settings):
    settings.CORS_ALLOWED_ORIGINS = ORIGINS[:2]
    stderr = Terminal()
    run_cors("import-settings", stderr=stderr)
    [line] = final_lines(stderr.getvalue())
    assert bar("adding", 2).fullmatch(line), line


def test_import_settings_quiet_hides_the_bar_on_a_terminal(settings):
    settings.CORS_ALLOWED_ORIGINS = ORIGINS[:2]
    stderr = Terminal()
    run_cors("import-settings", "--quiet", stderr=stderr)
    assert stderr.getvalue() == ""


def test_work_outside_the_command_line_draws_nothing():
    """The API calls the same services: with no bar opened, stages and steps are no-ops."""
    progress.stage("checking", total=3)
    progress.advance()
    assert progress.active() is False
