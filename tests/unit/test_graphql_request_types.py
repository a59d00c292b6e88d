"""GraphQL over HTTP fixes each request member's JSON type: `query` a string,
`operationName` a string or null, `variables` and `extensions` objects or null. The router
(adapters/graphql/router.py) answers any other type with a 400, also inside a batch.
Found by schemathesis (ST201): `operationName: {}` was answered 200. No I/O: the router's
body parsing on in-memory requests."""

import asyncio
from typing import Any

import orjson
import pytest
from cross_web import HTTPException

from adapters.graphql.router import AuthenticatedGraphQLRouter
from adapters.graphql.schema import build_schema


class Body:
    """The little of strawberry's request adapter that body parsing reads."""

    method = "POST"
    content_type = "application/json"
    headers: dict[str, str] = {"content-type": "application/json"}
    query_params: dict[str, str] = {}

    def __init__(self, value: Any) -> None:
        self.raw = orjson.dumps(value)

    async def get_body(self) -> bytes:
        return self.raw


@pytest.fixture(scope="module")
def router() -> AuthenticatedGraphQLRouter:
    schema = build_schema(development=False, max_cost=10_000, introspection=False)
    return AuthenticatedGraphQLRouter(schema, max_cost=10_000)


def parse(router: AuthenticatedGraphQLRouter, value: Any) -> Any:
    return asyncio.run(router.parse_http_body(Body(value)))


Q = "{ __typename }"
WRONG = [
    ({"query": Q, "operationName": {}}, "`operationName` must be a string or null"),
    ({"query": Q, "operationName": 1}, "`operationName` must be a string or null"),
    ({"query": Q, "operationName": ["Q"]}, "`operationName` must be a string or null"),
    ({"query": 7}, "`query` must be a string"),
    ({"query": Q, "variables": []}, "`variables` must be an object or null"),
    ({"query": Q, "extensions": "x"}, "`extensions` must be an object or null"),
    ([{"query": Q}, {"query": Q, "operationName": {}}], "operation 1: `operationName`"),
    ([{"query": Q, "variables": 1}], "operation 0: `variables` must be an object"),
    ([{"query": False}], "operation 0: `query` must be a string"),
]


@pytest.mark.parametrize(("body", "message"), WRONG, ids=[str(w[0]) for w in WRONG])
def test_a_member_of_the_wrong_type_is_a_400_naming_it(router, body, message):
    with pytest.raises(HTTPException) as caught:
        parse(router, body)
    assert caught.value.status_code == 400
    assert message in caught.value.reason


@pytest.mark.parametrize(
    "body",
    [
        {"query": Q},
        {"query": Q, "operationName": None, "variables": None, "extensions": None},
        {"query": "query A { __typename }", "operationName": "A", "variables": {"x": 1}},
        {"query": Q, "extensions": {"persistedQuery": {}}},
        [{"query": Q}, {"query": Q, "operationName": "B", "variables": {}}],
    ],
)
def test_members_of_the_right_types_pass(router, body):
    parsed = parse(router, body)
    items = parsed if isinstance(parsed, list) else [parsed]
    assert [item.query for item in items] == [
        b["query"] for b in (body if isinstance(body, list) else [body])
    ]
