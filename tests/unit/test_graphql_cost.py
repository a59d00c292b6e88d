"""The GraphQL cost estimate (adapters/graphql/cost.py) and its limit: refused before any
read model is read."""

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import parse

from adapters.graphql.cost import operation_cost
from adapters.graphql.schema import build_schema

SCHEMA = build_schema(development=True)


def cost(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> int:
    return operation_cost(SCHEMA._schema, parse(query), name, variables)


def test_the_documented_example() -> None:
    page = "{ videos(first: 100) { edges { node { id creator { handle } } } } }"
    assert cost(page) == 1 + 100 * (1 + (1 + (1 + (1 + 1))))  # 501


def test_nested_pages_multiply() -> None:
    inner = "creator { videos(first: 100) { edges { node { id } } } }"
    query = f"{{ videos(first: 100) {{ edges {{ node {{ id {inner} }} }} }} }}"
    # node: id 1 + creator (1 + videos (1 + 100 * (edges 1 + node (1 + id 1))))
    assert cost(query) == 1 + 100 * (1 + (1 + 1 + (1 + (1 + 100 * 3))))


def test_sizes_from_variables_defaults_and_the_schema() -> None:
    query = "query($n: Int = 5) { videos(first: $n) { edges { node { id } } } }"
    assert cost(query) == 1 + 5 * 3  # the variable's default
    assert cost(query, {"n": 100}) == 1 + 100 * 3
    assert cost("{ videos { edges { node { id } } } }") == 1 + 20 * 3  # the argument's default
    # Past the largest page the resolver refuses without SQL: counted as the largest page.
    assert cost("{ videos(first: 100000) { edges { node { id } } } }") == 1 + 100 * 3
    assert cost(query, {"n": "many"}) == 1 + 100 * 3  # unusable: assume the largest


def test_fragments_count_where_spread_in_linear_time() -> None:
    page = "fragment F on Query { videos(first: 10) { edges { node { id } } } }"
    assert cost(f"{{ ...F ...F }} {page}") == 2 * 31
    # Each fragment spreads the next twice: 2**40 fields, estimated without visiting each.
    levels = 40
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"
    started = time.monotonic()
    assert cost(query) == 2**levels
    assert time.monotonic() - started < 1.0


def test_the_chosen_operation_is_counted() -> None:
    query = "query A { __typename } query B { videos(first: 10) { edges { node { id } } } }"
    assert cost(query, name="A") == 1
    assert cost(query, name="B") == 31
    assert cost(query, name="C") == 0  # no such operation: execution answers that


class Untouchable:
    """Readers that fail the test when a resolver reads them."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.read.append(name)
        raise AssertionError(f"read model read: {name}")


@pytest.mark.parametrize("limit", [100, 15 * 601 - 1])
def test_a_costly_operation_is_refused_before_any_read(limit: int) -> None:
    schema = build_schema(development=True, max_cost=limit)
    readers = Untouchable()
    context = SimpleNamespace(readers=SimpleNamespace(stats=readers), loaders={})
    page = "videos(first: 100) { edges { node { id caption creator { handle } } } }"
    query = "{ " + " ".join(f"a{i}: {page}" for i in range(15)) + " }"  # 15 * 601
    result = asyncio.run(schema.execute(query, context_value=context))
    assert result.data is None
    [error] = result.errors
    assert error.extensions == {"code": "COST_LIMIT_EXCEEDED", "cost": 15 * 601, "limit": limit}
    assert "9015" in error.message and str(limit) in error.message
    assert readers.read == []
