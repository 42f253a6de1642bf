"""Schemathesis, stateful: chains of calls along the links of the API's own schema.

Create a policy, add an origin to it, read, replace, change and delete both, check the
origin, export and import back: the state machine follows the links the schema
documents (``corsadmin/api/schema.py``) and those schemathesis infers, with every
check on, authenticated, in process, with a fixed seed and a bounded number of steps.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from corsadmin.api.params import flag
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.origins import MAX_LENGTH
from tests.api_fixtures import make_user
from tests.test_api_schemathesis import load_schema

pytestmark = pytest.mark.usefixtures("in_process_wsgi")

MODELS = ("policy", "allowedorigin")
# CI: a fixed seed and 40 scenarios of up to 8 calls (about 350 requests, 20 s). Locally, a
# longer random run (as for the property tests, tests/hypothesis_profiles.py):
#     HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_api_stateful.py -s
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
SCENARIOS = 40 * (25 if LONG else 1)
STEPS = 8
# Generous: the bound is there to catch a request that hangs, not to benchmark.
MAX_RESPONSE_TIME = 5.0

# A schema of its own: the state machine adds the links it infers to the one it is built from.
schema = load_schema()
schema.config.checks.update(max_response_time=MAX_RESPONSE_TIME)
# Every check schemathesis has, but one (the optional ones are loaded by the test, not at
# collection, so that other schemathesis tests keep their defaults whatever the order):
# positive_data_acceptance: the schema cannot say which strings are origins or which policy
# names exist (nor that an origin is unique in its policy), so a schema-valid body may rightly
# get a 400. Everything else on: server errors, status codes, content types, headers and bodies
# against the schema, negative data rejected, use after free, created resources available,
# ignored auth, unsupported methods, the Allow header, response time.


def checks_on() -> list[Any]:
    load_all_checks()
    return [check for check in CHECKS.get_all() if check is not positive_data_acceptance]


STEPS_TAKEN: Counter[str] = Counter()

# The schema says an origin is a string, a policy a name, a url_regex a string; almost no
# random string is an origin, a policy that exists or a regular expression, so without help
# the machine would rarely get past creating things. Valid values of every kind (and the odd
# refused one) in place of generated values the schema allows: negative cases stay negative.
LABELS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
ORIGINS = st.one_of(
    st.builds("{}://{}.example.com".format, st.sampled_from(["https", "http"]), LABELS),
    st.builds("https://{}.example.org:{}".format, LABELS, st.integers(1, 65535)),
    st.sampled_from(
        [
            "https://*.example.com",
            "http://localhost:*",
            "null",
            "HTTPS://App.Example.COM:443",
            "https://bücher.example",
            "https://*.com",  # refused: a public suffix
            "https://app.example.com/path",  # refused: a path
        ]
    ),
)


TOKENS = {
    "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "purge"],
    "allow_headers": ["content-type", "authorization", "x-csrftoken", "X-Requested-With"],
    "expose_headers": ["x-total", "ETag", "link"],
}
POLICY_VALUES = {
    "url_regex": st.sampled_from(["^/", "^/api/", r"^/api/v\d+/", "^/(?!admin/)", "^/demo/echo/$", "("]),
    **{name: st.lists(st.sampled_from(tokens), max_size=4, unique=True) for name, tokens in TOKENS.items()},
}


def valid_text(value: Any, max_length: int | None = None) -> bool:
    """Whether a generated value is one the schema allows (a negative case must stay negative)."""
    return isinstance(value, str) and 1 <= len(value) <= (max_length or len(value))


def valid_tokens(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 100 and all(valid_text(v, 128) for v in value)


def replace(strategy: Any, name: str, values: Any) -> Any:
    return strategy.flatmap(lambda body: values.map(lambda value: {**body, name: value}))


def existing_policy(newest: bool, index: int) -> str:
    """A policy that exists when the step is drawn (the strategy is built once, the step later):
    the newest (often one this scenario created) or any."""
    names = list(Policy.objects.values_list("name", flat=True).order_by("-pk")) or ["default"]
    return names[0] if newest else names[index % len(names)]


POLICY_NAMES = st.builds(existing_policy, st.booleans(), st.integers(0, 1000))


@schema.hook("flatmap_body")
def known_values(context: Any, body: Any) -> Any:
    """Valid origins, policy names that exist (often one the scenario created), regexes and tokens."""
    path = context.operation.path
    strategy = st.just(body)
    if not isinstance(body, dict):
        return strategy
    if path.startswith("/api/cors/origins/"):
        if valid_text(body.get("origin"), MAX_LENGTH):
            strategy = replace(strategy, "origin", ORIGINS)
        if "policy" not in body or valid_text(body["policy"]):  # absent, or a name: another name
            strategy = st.one_of(strategy, replace(strategy, "policy", POLICY_NAMES))
    elif path.startswith("/api/cors/policies/"):
        if valid_text(body.get("url_regex"), 512):
            strategy = replace(strategy, "url_regex", POLICY_VALUES["url_regex"])
        for name in TOKENS:
            if valid_tokens(body.get(name)):
                strategy = replace(strategy, name, POLICY_VALUES[name])
    return strategy


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    auth: ClassVar[dict[str, str]] = {}
    checks: ClassVar[list[Any]] = []

    def setup(self) -> None:
        # Every scenario starts from the state after migrate: just the default policy.
        AllowedOrigin.objects.all().delete()
        Policy.objects.all().delete()
        Policy.objects.create(name="default")

    def step(self, input: Any) -> Any:
        if input.transition is not None and input.is_applied:
            STEPS_TAKEN[f"link {input.transition.id}"] += 1
        return super().step(input)

    def before_call(self, case: Any) -> None:
        # A preview (?dry_run=true) changes nothing, so it moves no scenario forward; and the
        # use-after-free check takes a previewed 2xx DELETE for a deletion. Previews are fuzzed by
        # tests/test_api_schemathesis.py and tested in tests/test_preview.py; here a write writes.
        if case.query and flag(str(case.query.get("dry_run", ""))):
            case.query.pop("dry_run")

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": self.auth}

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        STEPS_TAKEN[f"{case.method} {case.path} {response.status_code}"] += 1
        created = case.method == "POST" and case.path.endswith("/origins/") and response.status_code == 201
        if created and response.json()["policy"] != "default":
            STEPS_TAKEN["an origin added to a policy created in the scenario"] += 1
        case.validate_response(
            response,
            checks=self.checks,
            additional_checks=additional_checks,
            headers=self.auth,  # so ignored_auth knows them for the real credentials and probes without
            transport_kwargs=kwargs or None,
            recorder=self.recorder,
        )


@pytest.fixture
def auth_header(db: Any, settings: Any) -> dict[str, str]:
    from rest_framework.authtoken.models import Token

    user = make_user("stateful", *(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS))
    # The default rate limit holds (about 300 requests); a long run makes thousands a minute.
    if LONG:  # thousands of requests in a few minutes: no rate limit
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"corsadmin_user": None},
        }
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


CHAIN = "an origin added to a policy created in the scenario"
# Whether a scenario reaches the chain this test is for is chance: the derandomized run first,
# then fixed seeds, until it ran (every round's checks apply in full). With the policy drawn
# when the step is (``POLICY_NAMES``), run alone or after test_api_schemathesis the first round
# has it (4 times in 40 scenarios); drawn when the strategy was built (only "default" existed)
# it took 4 to 9 rounds. After some orders of the whole pass it still takes 4 (not understood).
SEEDS = (None, 1, 2, 3, 4, 5, 6, 7, 8)


def test_api_workflows_follow_the_schema(auth_header):
    Workflow.auth = auth_header
    Workflow.checks = checks_on()
    STEPS_TAKEN.clear()
    rounds = 0
    for fixed_seed in SEEDS:
        rounds += 1
        Workflow._hypothesis_internal_use_seed = None if LONG else fixed_seed  # what @seed sets
        Workflow.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                derandomize=not LONG and fixed_seed is None,
                database=None,
                deadline=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
        )
        if STEPS_TAKEN[CHAIN] > 0:
            break
    report = sorted(STEPS_TAKEN.items())
    print(
        f"schemathesis stateful: {sum(n for k, n in report if k[0].isupper())} requests in "
        f"{rounds} rounds of {SCENARIOS} scenarios"
    )
    for key, count in report:
        print(f"  {count:5} {key}")
    # The chains this test is for did run.
    assert STEPS_TAKEN[CHAIN] > 0
