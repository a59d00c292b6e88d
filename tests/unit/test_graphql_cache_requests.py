"""What the response cache does with a request (adapters/graphql/cache.py,
cache_operations.py): which requests take the fast path, the key, what is kept, which
operations are cacheable. Pure functions, no I/O."""

from uuid import UUID

import pytest
from starlette.datastructures import Headers

from adapters.auth.principal import Principal, Role
from adapters.graphql.cache import consistency_token, keepable, operation_data, request_key
from adapters.graphql.cache_operations import MAX_QUERY_CHARS, cacheable

JSON = ((b"content-type", b"application/json"),)

ADMIN = Principal(Role.ADMIN, "k1")
ANALYST = Principal(Role.ANALYST, "k2")
CREATOR_A = Principal(Role.CREATOR, "k3", UUID(int=1))
CREATOR_B = Principal(Role.CREATOR, "k4", UUID(int=2))


def test_the_key_is_the_canonical_operation_and_the_callers_role_and_subject():
    op = {"query": "{ x }", "variables": {"a": 1, "b": [1, {"c": 2, "d": 3}]}}
    same = {"variables": {"b": [1, {"d": 3, "c": 2}], "a": 1}, "query": "{ x }"}
    assert request_key("POST", ADMIN, op) == request_key("POST", ADMIN, same)
    assert request_key("POST", ADMIN, op) == request_key("POST", Principal(Role.ADMIN, "k9"), op)
    keys = {
        request_key("POST", ADMIN, op),
        request_key("POST", ANALYST, op),
        request_key("POST", CREATOR_A, op),
        request_key("POST", CREATOR_B, op),
        request_key("GET", ADMIN, op),
        request_key("POST", ADMIN, {**op, "operationName": "Q"}),
        request_key("POST", ADMIN, {**op, "variables": {"a": 2}}),
    }
    assert len(keys) == 7


def scope(method: str, query_string: bytes = b"", content_type: bytes = b"application/json"):
    headers = [(b"content-type", content_type)] if content_type else []
    return {"type": "http", "method": method, "query_string": query_string, "headers": headers}


def read(s: dict, body: bytes = b"") -> dict | None:
    return operation_data(s, Headers(scope=s), body)


def test_only_single_json_operations_take_the_fast_path():
    assert read(scope("POST"), b'{"query": "{ x }"}') == {"query": "{ x }"}
    assert read(scope("POST", content_type=b"application/json; charset=utf-8"), b'{"query": "q"}')
    assert read(scope("POST"), b'[{"query": "{ x }"}]') is None  # a batch
    assert read(scope("POST"), b"{not json") is None
    assert read(scope("POST", content_type=b"multipart/form-data"), b"") is None
    assert read(scope("POST"), b'{"query": 1}') is None
    assert read(scope("POST"), b'{"query": "q", "variables": []}') is None
    assert read(scope("POST"), b'{"query": "q", "operationName": 3}') is None
    got = read(scope("GET", b"query=%7B+x+%7D&variables=%7B%22a%22%3A1%7D", b""))
    assert got == {"query": "{ x }", "variables": {"a": 1}}
    assert read(scope("GET", b"variables=%7Bbad", b"")) is None
    assert read(scope("GET", b"", b"")) is None  # the GraphiQL page


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, (True, None)), ("", (True, None)), ("42", (True, 42)), ("x1", (False, None))],
)
def test_consistency_tokens_are_read_as_the_graphql_context_reads_them(raw, expected):
    s = scope("POST")
    if raw is not None:
        s["headers"].append((b"x-consistency-token", raw.encode()))
    assert consistency_token(Headers(scope=s)) == expected


def test_only_complete_successes_are_kept():
    assert keepable(200, JSON, b'{"data":{"x":1}}')
    assert not keepable(200, JSON, b'{"data":null,"errors":[{"message":"m"}]}')
    assert not keepable(200, JSON, b'{"data":{"x":null},"errors":[{"message":"m"}]}')
    assert not keepable(429, JSON, b'{"data":{"x":1}}')
    assert not keepable(200, ((b"content-type", b"text/plain"),), b'{"data":{"x":1}}')
    assert not keepable(200, JSON, b"not json")


@pytest.mark.parametrize(
    "query",
    [
        "{ trending(kind: VIDEO, window: DAY, first: 100) { rank key } }",
        "query($id: UUID!) { video(id: $id) { id creator { handle } moderationCase { id } } }",
        "{ summary { views headPosition projectionPositions } }",
        "query A { summary { views } } query B { trending { key } }",
        "{ __typename videos(first: 5) { edges { node { id } } } }",
    ],
)
def test_pure_reads_of_projections_are_cacheable(query):
    assert cacheable(query, "A" if "query A" in query else None)


@pytest.mark.parametrize(
    ("query", "operation"),
    [
        ("{ alerts { edges { node { id actionStatus } } } }", None),  # worker-written columns
        ('{ viewerSessions(viewerId: "00000000-0000-0000-0000-000000000001") { views } }', None),
        ('{ recommendations(viewerId: "00000000-0000-0000-0000-000000000001") { score } }', None),
        ("{ summary { views } alerts { edges { cursor } } }", None),
        ('{ video(id: "x") { moderationCase { timeline { actorId } } } }', None),
        (
            '{ video(id: "x") { ...F } } '
            "fragment F on Video { moderationCase { t: timeline { position } } }",
            None,
        ),
        ("subscription { summary { views } }", None),
        ("{ summary { views ", None),  # a syntax error: strawberry answers it
        ("query A { summary { views } } query B { alerts { edges { cursor } } }", "B"),
    ],
)
def test_reads_outside_projections_errors_and_subscriptions_are_not(query, operation):
    assert not cacheable(query, operation)


def test_very_long_query_texts_are_not_cacheable_so_decisions_stay_small():
    padding = "#" + "x" * MAX_QUERY_CHARS + "\n"
    assert not cacheable(padding + "{ summary { views } }", None)
