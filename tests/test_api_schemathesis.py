"""Schemathesis against the API's own OpenAPI schema: authenticated, in process, repeatable."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api_fixtures import make_user

pytestmark = pytest.mark.usefixtures("in_process_wsgi", "all_checks")

MODELS = ("policy", "allowedorigin")


def load_schema() -> schemathesis.BaseSchema:
    """The schema /api/cors/schema/ serves, generated in process (no request, so no database).

    ``schemathesis.pytest.from_fixture`` would fetch it in a fixture, but its lazy
    loader does not run on pytest 9; ``test_api.py`` checks the endpoint serves it.
    """
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from project.wsgi import application

    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(
        json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))
    )
    loaded.app = application
    return loaded


@pytest.fixture
def all_checks():
    """Every check schemathesis has (the optional ones too), whichever test loaded them first."""
    load_all_checks()


@pytest.fixture
def auth_header(db):
    from rest_framework.authtoken.models import Token

    # probe_edge too: probe/ is fuzzed as well (no host may be probed here: ALLOWED_HOSTS is '*',
    # which never counts, so nothing is sent).
    codenames = [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS]
    user = make_user("fuzzer", *codenames, "probe_edge")
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


schema = load_schema()


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, auth_header):
    # Every check but positive_data_acceptance: the schema cannot say which strings are
    # origins or which policy names exist, so a schema-valid body may rightly get a 400.
    case.call_and_validate(headers=auth_header, excluded_checks=[positive_data_acceptance])
