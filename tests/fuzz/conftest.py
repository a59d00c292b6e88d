"""Hypothesis profiles and fuzz figures for tests/fuzz.

`HYPOTHESIS_PROFILE=ci` (the default) keeps the normal suite short; `HYPOTHESIS_PROFILE=long`
runs the long versions of the same tests:

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz -p no:randomly

The figures (runs, commands, fuzz cases) are counted in support.figures while the tests
run and printed in pytest's terminal summary (tests/conftest.py), for docs/reliability.md.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from support.figures import FIGURES

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
# Failing examples are replayed first on the next run; kept in pytest's (git-ignored) cache.
DATABASE = DirectoryBasedExampleDatabase(
    Path(__file__).resolve().parents[2] / ".pytest_cache" / "hypothesis"
)

# (max_examples, stateful_step_count) per test kind and profile.
PROFILES: dict[str, dict[str, tuple[int, int]]] = {
    "ci": {"stateful": (15, 30), "api": (8, 1), "graphql": (8, 1), "auth": (2, 1)},
    "long": {"stateful": (300, 60), "api": (300, 1), "graphql": (300, 1), "auth": (50, 1)},
}

__all__ = ["FIGURES", "PROFILE", "profile"]


def profile(kind: str) -> settings:
    """Hypothesis settings of one test kind under the selected profile."""
    if PROFILE not in PROFILES:
        raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}")
    examples, steps = PROFILES[PROFILE][kind]
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,  # commands hit a real store; timing is not what these tests check
        database=DATABASE,
        print_blob=True,
        # Negative cases of a tightly typed parameter (a UUID path) are mostly filtered
        # out by schemathesis; fewer cases there is expected, not a problem.
        suppress_health_check=[HealthCheck.filter_too_much] if kind != "stateful" else [],
    )
