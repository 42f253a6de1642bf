"""Hypothesis settings for the property and fuzz tests (tests/test_properties.py, tests/test_fuzz.py).

Two profiles, chosen by the environment variable ``HYPOTHESIS_PROFILE``:

- ``ci`` (the default, what ``make test`` runs): derandomized, so every run tries the
  same examples in the same order; no example database; a quarter (``CI_SHARE``) of each
  test's budget (at least ``CI_MINIMUM`` examples), so that the whole suite stays quick.
- ``long`` (local runs, for depth): random seeds, the example database in ``.hypothesis/``
  (so a failure found once is replayed first next time), and ``LONG_FACTOR`` times each
  test's budget::

      HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_properties.py \\
          tests/test_fuzz.py --hypothesis-show-statistics

The profile is applied per test with ``@profile(examples=N)`` rather than loaded
globally, so other hypothesis users in the suite (the schemathesis run) keep their
own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

LONG_FACTOR = 50
CI_SHARE = 0.25
CI_MINIMUM = 25

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # No "explain" phase: on a failure it re-runs the test hundreds of times to point at lines.
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
settings.register_profile(
    "long",
    derandomize=False,
    deadline=None,
    print_blob=True,
    # No "explain" phase: on a failure it re-runs the test hundreds of times to point at lines.
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def profile_name() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    return name if name in ("ci", "long") else "ci"


def budget(examples: int, name: str) -> int:
    if name == "long":
        return examples * LONG_FACTOR
    return max(min(examples, CI_MINIMUM), round(examples * CI_SHARE))


def profile(examples: int) -> settings:
    """The active profile with this test's share of its example budget ``examples``."""
    name = profile_name()
    return settings(settings.get_profile(name), max_examples=budget(examples, name))
