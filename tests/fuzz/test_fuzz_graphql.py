"""schemathesis' GraphQL checks, all of them (`st run --checks all`), against the GraphQL
schema a real `reelpulse serve` publishes: generated queries over every root field.

One documented exception, where the tool cannot know better: GraphQL has no way to say
that `first` takes 1 to 100 (or `minutes` 1 to 1440, or that `after` is a cursor the
server handed out), so schemathesis generates `first: 0` or `after: ""` as valid input
and reports the server's answer, a `UserError` in `errors` (e.g. code PAGE_SIZE), as a
"GraphQL server error" (ST113) or "client error" (ST206). Such a case passes here only
when every error is one of those expected user errors and no data was invented for it;
every other case (the most, and every case whose input the server takes) must pass all
checks. Anything else, a masked "Unexpected error", a 5xx, a cost refusal of a generated
query, is a failure.

Short by default (HYPOTHESIS_PROFILE=ci); HYPOTHESIS_PROFILE=long runs 300 cases per
field. Figures go to the terminal summary (tests/fuzz/conftest.py)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from e2e.servers import free_port, start_server
from hypothesis import given
from schemathesis.checks import CHECKS, load_all_checks
from support.auth import HEADERS

from .conftest import FIGURES, profile

TIMEOUT = 10.0
# User errors for rules the schema cannot express (adapters/graphql/context.py UserError).
INEXPRESSIBLE = {"PAGE_SIZE", "BAD_USER_INPUT"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    db = Path(tmp_path_factory.mktemp("fuzz-graphql")) / "store.db"
    port = free_port()
    proc = start_server(f"sqlite:///{db}", port, timeout=120)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=TIMEOUT) as client:
            r = client.post(
                "/v1/creators", json={"handle": "gqlseed", "display_name": "S", "region": "SE"}
            )
            assert r.status_code == 201, r.text
            video = {"creator_id": r.json()["id"], "caption": "seed", "duration_seconds": 9}
            assert client.post("/v1/videos", json=video).status_code == 201
        yield schemathesis.graphql.from_url(f"{base}/graphql", headers=HEADERS)
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)


def all_checks() -> list:
    load_all_checks()
    return [c for c in CHECKS.get_all() if not isinstance(c, type)]


def expected_user_errors(response: httpx.Response) -> bool:
    """The documented exception: only user errors for inexpressible rules, no data."""
    if response.status_code != 200:
        return False
    body = response.json()
    errors = body.get("errors") or []
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    return (
        bool(errors)
        and codes <= INEXPRESSIBLE
        and not any(value is not None for value in (body.get("data") or {}).values())
    )


def test_every_graphql_field_passes_all_checks(schema: schemathesis.BaseSchema) -> None:
    checks = all_checks()
    assert len(checks) >= 5, checks
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    failures = []
    for operation in operations:

        @profile("graphql")
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            FIGURES["GraphQL schemathesis cases"] += 1
            response = case.call(headers=HEADERS, timeout=TIMEOUT)
            if expected_user_errors(response):
                FIGURES["GraphQL schemathesis cases (inexpressible rule)"] += 1
                return
            case.validate_response(response, checks=checks, headers=HEADERS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as e:  # schemathesis raises a FailureGroup
            failures.append(f"{operation.label}: {type(e).__name__}: {str(e)[:1500]}")
    FIGURES["GraphQL schemathesis fields"] += len(operations)
    assert not failures, "\n\n".join(failures)
