"""Client mistakes are not server faults in the log (issue 16): a page size out of range,
a query too deep or a bad cursor were logged at ERROR with a traceback (strawberry logs
every error so). They are logged at INFO without one; an unexpected error inside a
resolver is still ERROR with its traceback (and masked for the client)."""

import logging

import pytest

from adapters.graphql import schema as graphql_schema

DEEP = "{ videos(first: 1) { edges { node { creator { videos(first: 1) { edges { node { creator { videos(first: 1) { edges { node { id } } } } } } } } } } } }"  # noqa: E501


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "query",
    [
        "{ videos(first: 1000) { edges { node { id } } } }",  # page size
        '{ videos(first: 5, after: "not-a-cursor") { edges { node { id } } } }',  # cursor
        DEEP,  # depth limit
        "{ nope }",  # no such field
    ],
)
def test_a_client_mistake_is_not_logged_as_an_error(served, caplog, query):
    client, _ = served
    caplog.set_level(logging.INFO)
    r = client.post("/graphql", json={"query": query})
    assert r.json().get("errors"), r.text
    assert not _errors_logged(caplog), [(r.name, r.getMessage()) for r in _errors_logged(caplog)]
    assert any("graphql" in r.name or "strawberry" in r.name for r in caplog.records), [
        (r.name, r.levelname, r.getMessage()) for r in caplog.records
    ]


def test_a_server_fault_is_still_an_error_with_its_traceback(served, caplog, monkeypatch):
    client, _ = served
    caplog.set_level(logging.INFO)

    async def broken(info):
        raise RuntimeError("a bug in a reader")

    monkeypatch.setattr(graphql_schema, "_summary", broken)
    r = client.post("/graphql", json={"query": "{ summary { videos } }"})
    assert r.json().get("errors"), r.text
    assert "a bug in a reader" not in r.text  # masked for the client
    faults = _errors_logged(caplog)
    assert faults and any(f.exc_info for f in faults), [(f.name, f.getMessage()) for f in faults]
