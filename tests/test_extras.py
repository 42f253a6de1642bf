"""The core install (``pip install corsadmin``): no REST framework, no django-filter, no
drf-spectacular, no tqdm. Simulated in a child Python where those modules cannot be imported
(``sys.modules[name] = None``), since this test environment has them all.

The package test (tests/test_package.py) installs the real core wheel into fresh sites.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISSING = ("rest_framework", "django_filters", "drf_spectacular", "drf_spectacular_sidecar", "tqdm")

PRELUDE = f"""
import sys
for name in {MISSING!r}:
    sys.modules[name] = None  # "import name" raises ImportError, as where it is not installed
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "corsadmin",
    ],
    MIDDLEWARE=["corsadmin.middleware.CorsMiddleware"],
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}},
    ROOT_URLCONF="site_urls",
    USE_TZ=True,
    SECRET_KEY="not-secret",
    CORSADMIN=CORSADMIN,
)
django.setup()
"""


def child(tmp_path: Path, code: str, *, urls: str = "urlpatterns = []\n", corsadmin: str = "{}") -> str:
    (tmp_path / "site_urls.py").write_text(urls)
    program = f"CORSADMIN = {corsadmin}\n" + PRELUDE + textwrap.dedent(code)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_module_but_the_api_imports_without_the_extras(tmp_path):
    out = child(
        tmp_path,
        """
        import importlib, pathlib, corsadmin
        failed = []
        root = pathlib.Path(corsadmin.__file__).parent
        for path in sorted(root.rglob("*.py")):
            name = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
            if name.startswith(("corsadmin.api", "corsadmin.metrics_urls", "corsadmin.migrations")):
                continue
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failed.append(f"{name}: {exc}")
        print(failed)
        """,
    )
    assert out.strip() == "[]"


def test_the_command_line_works_without_the_extras(tmp_path):
    out = child(
        tmp_path,
        """
        import io, json
        from django.core.management import call_command
        call_command("migrate", verbosity=0)

        def cors(*args):
            out = io.StringIO()
            call_command("cors", *args, stdout=out, stderr=io.StringIO())
            return out.getvalue()

        cors("add", "https://app.example.com", "--note", "hi")
        cors("policy", "add", "api", "--url-regex", "^/api/", "--methods", "GET,PUT", "--credentials")
        listed = json.loads(cors("list", "--json"))
        policies = json.loads(cors("policy", "list", "--json"))
        check = json.loads(cors("check", "https://app.example.com", "--path", "/x", "--json"))
        exported = cors("export")
        open("cors.json", "w").write(exported)
        imported = cors("import", "cors.json")
        errors = []
        for bad in (["policy", "add", "bad name"], ["check", "https://app.example.com", "--path", "x"]):
            try:
                cors(*bad)
            except Exception as exc:
                errors.append(str(exc))
        print(json.dumps([listed, policies, check["allowed"], imported, errors]))
        """,
    )
    listed, policies, allowed, imported, errors = json.loads(out)
    assert [(e["origin"], e["note"].partition(" (added")[0], e["policy"]) for e in listed] == [
        ("https://app.example.com", "hi", "default")
    ]
    assert {p["name"]: p["allow_methods"] for p in policies} == {
        "api": ["GET", "PUT"],
        "default": policies[1]["allow_methods"],
    }
    assert allowed is True
    assert "unchanged 2 policies, 1 origins" in imported
    assert errors == [
        'name: Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.',
        "path: Give a path starting with '/', e.g. /api/items/.",
    ]


def test_progress_without_tqdm_shows_no_bar_and_does_the_work(tmp_path):
    out = child(
        tmp_path,
        """
        import io
        from corsadmin import progress
        stream = io.StringIO()
        with progress.shown(stream, True):
            progress.stage("checking", total=3)
            progress.advance(3)
            progress.done()
        print(repr(stream.getvalue()))
        """,
    )
    assert out.strip() == "''"


def test_the_api_says_what_to_install(tmp_path):
    out = child(
        tmp_path,
        """
        try:
            import corsadmin.api.urls
        except Exception as exc:
            print(type(exc).__name__, "|", exc)
        """,
    )
    name, _, message = out.partition(" | ")
    assert name == "APINotInstalled"
    assert 'pip install "corsadmin[api]"' in message
    assert "djangorestframework, django-filter, drf-spectacular, drf-spectacular-sidecar" in message


INCLUDE = 'from django.urls import include, path\nurlpatterns = [path("%s", include("%s"))]\n'


@pytest.mark.parametrize(
    ("urls", "corsadmin", "reason"),
    [
        (
            INCLUDE % ("api/cors/", "corsadmin.api.urls"),
            "{}",
            "the URLconf 'site_urls' includes corsadmin's REST API",
        ),
        (
            INCLUDE % ("metrics/", "corsadmin.metrics_urls"),
            "{}",
            "the URLconf 'site_urls' includes corsadmin's REST API",
        ),
        (
            "urlpatterns = []\n",
            '{"IMPORT_MAX_BYTES": 1000}',
            "CORSADMIN sets IMPORT_MAX_BYTES, read only by the REST API",
        ),
        ("urlpatterns = []\n", "{}", None),
    ],
)
def test_the_check_says_what_is_missing(tmp_path, urls, corsadmin, reason):
    out = child(
        tmp_path,
        """
        import json
        from corsadmin.extras import check_api_installed
        print(json.dumps([[m.id, m.msg, m.hint] for m in check_api_installed()]))
        """,
        urls=urls,
        corsadmin=corsadmin,
    )
    messages = json.loads(out)
    if reason is None:
        assert messages == []
        return
    [(check_id, msg, hint)] = messages
    assert check_id == "corsadmin.E017"
    assert 'pip install "corsadmin[api]"' in msg and reason in msg
    assert hint.startswith('pip install "corsadmin[api]"')


def test_the_check_is_silent_where_the_api_is_installed(settings):
    from corsadmin.extras import check_api_installed

    settings.CORSADMIN = {**settings.CORSADMIN, "IMPORT_MAX_BYTES": 1000}
    assert check_api_installed() == []
