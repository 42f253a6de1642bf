"""The package as a user gets it: built, checked, and installed into fresh Django sites, in both
shapes: the core (``pip install corsadmin``: the middleware, the admin, the command line; no
REST framework nor tqdm) and ``corsadmin[api]`` (the REST API mounted too).

Marked ``package``. Needs ``uv`` (requirements-test.txt), ``build`` and ``twine``, and
the interpreters Python 3.11 and 3.13 (on the CI machine: pyenv's). A missing tool or
interpreter is a failure, never a skip. The wheel, not the checkout, is installed: each
site lives in its own directory and venv, and the test asserts where ``corsadmin`` is
imported from.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parent.parent
APP = "https://app.example.com"

# (Python, Django series, shape): the oldest and the newest supported pair, each shape once (the
# suite itself runs the API and the core on both Djangos; here, what the wheel and its extras
# bring to a fresh site).
SITES = [("3.11", "5.2", "api"), ("3.13", "6.1", "core")]


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def interpreter(version: str) -> str:
    """``pythonX.Y`` from PATH, else pyenv's; fails (never skips) when there is none."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", ""], check=False, capture_output=True).returncode == 0
        ):
            return candidate
    pytest.fail(f"Python {version} is needed for the package test and was not found (PATH or {pyenv_root}).")


def uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        pytest.fail("uv is needed for the package test: pip install -r requirements-test.txt")
    return find_uv_bin()


def pinned_django(series: str) -> str:
    """The Django release requirements.txt pins for this series (one place for the pins)."""
    pins = re.findall(r"^Django==(\S+?);", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    matching = [pin for pin in pins if pin == series or pin.startswith(series + ".")]
    assert len(matching) == 1, f"requirements.txt pins {pins}, none (or several) for Django {series}"
    return matching[0]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", out, ROOT], cwd=ROOT, timeout=600)
    return out


def only(directory: Path, pattern: str) -> Path:
    found = list(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(dist):
    only(dist, "corsadmin-*.tar.gz")
    only(dist, "corsadmin-*-py3-none-any.whl")
    out = run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())], cwd=ROOT)
    assert out.count("PASSED") == 2


def test_the_wheel_carries_templates_migrations_and_py_typed(dist):
    import corsadmin

    names = set(zipfile.ZipFile(only(dist, "*.whl")).namelist())
    expected = {
        "corsadmin/py.typed",
        "corsadmin/testutils.py",
        "corsadmin/templates/admin/corsadmin/check.html",
        "corsadmin/locale/de/LC_MESSAGES/django.po",
        "corsadmin/locale/de/LC_MESSAGES/django.mo",
        "corsadmin/migrations/0001_initial.py",
        "corsadmin/migrations/0002_default_policy.py",
        "corsadmin/management/commands/cors.py",
        f"corsadmin-{corsadmin.__version__}.dist-info/METADATA",
    }
    assert expected - names == set()


def test_the_sdist_carries_py_typed_and_no_tests(dist):
    with tarfile.open(only(dist, "corsadmin-*.tar.gz")) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    expected = {
        "corsadmin/py.typed",
        "corsadmin/testutils.py",
        "corsadmin/locale/de/LC_MESSAGES/django.po",
        "corsadmin/locale/de/LC_MESSAGES/django.mo",
        "pyproject.toml",
    }
    assert expected - names == set()
    assert not [name for name in names if name.startswith(("tests/", "bench/", "project/"))]


def test_the_version_comes_from_corsadmin_init(dist):
    import corsadmin

    assert only(dist, "*.whl").name == f"corsadmin-{corsadmin.__version__}-py3-none-any.whl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_app_as_the_readme_says(settings_py: Path) -> None:
    """README, "Install in your own site": the app in INSTALLED_APPS, the middleware first."""
    text = settings_py.read_text()
    text = text.replace("INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "corsadmin",\n', 1)
    text = text.replace("MIDDLEWARE = [\n", 'MIDDLEWARE = [\n    "corsadmin.middleware.CorsMiddleware",\n', 1)
    assert text.count('"corsadmin') == 2, "startproject's settings.py changed shape"
    text += '\nCORSADMIN = {"REFRESH_INTERVAL": 1, "CACHE_ALIAS": "default"}\n'
    settings_py.write_text(text)


API_APPS = [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
# What only corsadmin[api] and corsadmin[cli] bring: never in the core install.
EXTRA_DISTRIBUTIONS = ("djangorestframework", "django-filter", "drf-spectacular", "tqdm")
EXTRA_MODULES = ("rest_framework", "django_filters", "drf_spectacular", "drf_spectacular_sidecar", "tqdm")
API_INCLUDE = 'path("api/cors/", include("corsadmin.api.urls"))'


def add_the_api_as_the_readme_says(site: Path) -> None:
    """README, "REST API": its apps and its URLs."""
    settings_py = site / "mysite" / "settings.py"
    text = settings_py.read_text()
    apps = "".join(f'    "{app}",\n' for app in API_APPS)
    text = text.replace(
        'INSTALLED_APPS = [\n    "corsadmin",\n', f'INSTALLED_APPS = [\n{apps}    "corsadmin",\n', 1
    )
    assert '"rest_framework.authtoken"' in text
    settings_py.write_text(text)
    include_the_api(site)


def include_the_api(site: Path) -> None:
    urls_py = site / "mysite" / "urls.py"
    text = urls_py.read_text().replace(
        "from django.urls import path", "from django.urls import include, path"
    )
    text = text.replace("urlpatterns = [\n", f"urlpatterns = [\n    {API_INCLUDE},\n", 1)
    assert API_INCLUDE in text and "import include, path" in text, "startproject's urls.py changed shape"
    urls_py.write_text(text)


ADMIN_CHECK = f"""
from django.test.utils import setup_test_environment
setup_test_environment()
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-not-used")
client = Client()
client.force_login(user)
index = client.get("/admin/")
listing = client.get("/admin/corsadmin/allowedorigin/")
print(index.status_code, listing.status_code, {APP!r} in listing.content.decode())
"""


def fetch(port: int, method: str, headers: dict[str, str], path: str = "/") -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:  # Django's "It worked" page for / is a 404 without DEBUG
        return error.code, {k.lower(): v for k, v in error.headers.items()}


@pytest.mark.parametrize(
    ("python", "django", "shape"), SITES, ids=[f"py{p}-django{d}-{s}" for p, d, s in SITES]
)
def test_the_wheel_serves_cors_in_a_fresh_startproject_site(python, django, shape, dist, tmp_path):
    """``core``: ``pip install corsadmin``, the middleware, the admin and the command line, no REST
    framework nor tqdm; ``api``: ``pip install "corsadmin[api]"``, the REST API mounted too."""
    # A user's shell: none of this test run's Django settings or services.
    skip = ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    venv = tmp_path / "venv"
    run([uv(), "venv", "--quiet", "--python", interpreter(python), venv], cwd=tmp_path)
    py = venv / "bin" / "python"
    wheel = only(dist, "*.whl")
    requirement = f"{wheel}[api]" if shape == "api" else str(wheel)
    run(
        [uv(), "pip", "install", "--quiet", "--python", py, requirement, f"Django=={pinned_django(django)}"],
        cwd=tmp_path,
    )
    installed = run([py, "-c", FIND_MODULES], cwd=tmp_path, env=env).split()
    assert installed == (list(EXTRA_MODULES[:-1]) if shape == "api" else []), installed

    site = tmp_path / "mysite"
    site.mkdir()
    run([venv / "bin" / "django-admin", "startproject", "mysite", site], cwd=tmp_path, env=env)
    add_app_as_the_readme_says(site / "mysite" / "settings.py")
    if shape == "api":
        add_the_api_as_the_readme_says(site)

    where = run(
        [py, "-c", "import corsadmin, django; print(corsadmin.__file__); print(django.get_version())"],
        cwd=site,
        env=env,
    ).split()
    assert where[0].startswith(str(venv)), where  # the installed wheel, not the checkout
    assert where[1] == pinned_django(django)

    run([py, "manage.py", "check"], cwd=site, env=env)
    run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=site, env=env)
    run([py, "manage.py", "cors", "add", APP], cwd=site, env=env)
    assert APP in run([py, "manage.py", "cors", "list"], cwd=site, env=env)
    assert '"allowed": true' in run(
        [py, "manage.py", "cors", "check", APP, "--path", "/x", "--json"], cwd=site, env=env
    )
    exported = run([py, "manage.py", "cors", "export"], cwd=site, env=env)
    (tmp_path / "cors.json").write_text(exported)
    assert "unchanged 1 policies, 1 origins" in run(
        [py, "manage.py", "cors", "import", tmp_path / "cors.json"], cwd=site, env=env
    )
    # The last line: Django's shell may first say what it imported automatically.
    assert run([py, "manage.py", "shell", "-c", ADMIN_CHECK], cwd=site, env=env).splitlines()[-1].split() == [
        "200",
        "200",
        "True",
    ]

    port = free_port()
    server = subprocess.Popen(
        [py, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=site,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "runserver exited"
                assert time.monotonic() < deadline, "runserver did not listen within 60 s"
                time.sleep(0.2)
        status, headers = fetch(port, "GET", {"Origin": APP})
        _, refused = fetch(port, "GET", {"Origin": "https://evil.example.net"})
        preflight_status, preflight = fetch(
            port, "OPTIONS", {"Origin": APP, "Access-Control-Request-Method": "PUT"}
        )
        api_status, _ = fetch(port, "GET", {"Origin": APP}, "/api/cors/policies/")
    finally:
        server.terminate()
        server.wait(timeout=10)

    # Django's "It worked" page answers / only while the URLconf holds the admin alone.
    page = 200 if shape == "core" else 404
    assert (status, headers["access-control-allow-origin"], headers["vary"]) == (page, APP, "Origin")
    assert "access-control-allow-origin" not in refused
    assert (
        preflight_status,
        preflight["access-control-allow-origin"],
        preflight["access-control-allow-methods"],
    ) == (
        200,
        APP,
        "DELETE, GET, OPTIONS, PATCH, POST, PUT",
    )
    # Anonymous: the API refuses (it is there); the core site has no such URL.
    assert api_status in ((401, 403) if shape == "api" else (404,)), api_status

    metadata = run([py, "-c", REQUIRES], cwd=site, env=env).splitlines()
    unconditional = [
        re.match(r"[A-Za-z0-9_.-]+", line)[0].lower() for line in metadata if "extra ==" not in line
    ]
    assert unconditional and not set(unconditional) & set(EXTRA_DISTRIBUTIONS), unconditional
    assert {line.split(";")[1].strip() for line in metadata if "extra ==" in line} >= {
        'extra == "api"',
        'extra == "cli"',
    }

    if shape == "core":
        # The REST API included without corsadmin[api]: the check says what to install.
        include_the_api(site)
        result = subprocess.run(
            [py, "manage.py", "check"], cwd=site, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0
        assert 'pip install "corsadmin[api]"' in result.stdout + result.stderr


FIND_MODULES = f"import importlib.util as u; print(' '.join(n for n in {EXTRA_MODULES!r} if u.find_spec(n)))"
REQUIRES = "import importlib.metadata as m; print('\\n'.join(m.requires('corsadmin')))"
