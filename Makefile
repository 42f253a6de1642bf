# make run: set up and serve on http://127.0.0.1:8000/   make test: set up and run the suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 3
# Python writes bytecode here even where the environment says not to: each gunicorn worker and
# each test process would otherwise compile the app (and uv-installed packages) again at start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-venv setup serve clean browser gettext corsheaders-suite

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Test tools (requirements-test.txt): only `make test` installs them.
$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin

# PORT=8001 (and HOST=, WORKERS=) to serve elsewhere; "Serving on" is printed once gunicorn listens.
run: setup
	@$(PY) -m project.port_free $(HOST) $(PORT)
	$(VENV)/bin/gunicorn project.wsgi --config python:project.gunicorn_conf --bind $(HOST):$(PORT) \
	  --workers $(WORKERS) --access-logfile -

# Debian's Chromium for the real-browser tests (tests/test_browser.py); apt needs root (or sudo).
browser:
	@test -x /usr/bin/chromium || ( \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium )

# GNU gettext (xgettext, msgfmt) for the catalogue tests (tests/test_locale.py: makemessages on a
# copy of the sources); an install needs none (the compiled .mo ships in the package).
gettext:
	@test -x /usr/bin/xgettext || ( \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gettext )

# The Django matrix (noxfile.py): Django 6.1 on Python 3.13, Django 5.2 on Python 3.11, its
# sessions in lanes side by side (tests/lanes.py; logs in var/test-logs/).
test: setup browser gettext $(VENV)/.test-installed
	$(PY) -m tests.lanes $(VENV)/bin/nox

# Quicker, while developing: the django61 session's two passes in .venv (python3's Django).
test-venv: setup browser gettext $(VENV)/.test-installed
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -m "not services" --mix-db-tests --durations=25
	if [ -n "$$DATABASE_URL$$REDIS_URL" ]; then \
	  $(PY) -m pytest -m "services or backends" --mix-db-tests --durations=25; fi  # DEVELOPERS.md

# django-cors-headers' own suite with corsadmin's middleware in its place (not in `make test`;
# fetches nothing): CORSHEADERS_CHECKOUT=<its work tree or git dir> [CORSHEADERS_REF=4.9.0].
corsheaders-suite: $(VENV)/.test-installed
	$(PY) tests/corsheaders_suite.py

clean:
	rm -rf $(VENV) var .nox dist
