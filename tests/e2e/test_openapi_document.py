"""The served OpenAPI document describes what the server answers (issue 15, section 5).

Found by schemathesis `--checks all` on the served document: a dangling `$ref`, an
Idempotency-Key without its limits, /metrics documented as JSON, /readyz without its
503, GraphQL's GET page as JSON, and 405 answers whose `Allow` named one method of a
path that has two (one route per method).
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = Path(tmp_path_factory.mktemp("openapi")) / "store.db"
    container = bootstrap(Settings(database_url=f"sqlite:///{db}"))
    with TestClient(create_app(container, run_background=False), headers=HEADERS) as client:
        yield client
    container.close()


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    dangling = {r for r in refs(doc) if r.removeprefix("#/components/schemas/") not in schemas}
    assert not dangling
    batch = doc["paths"]["/v1/engagement/batch"]["post"]["requestBody"]
    assert "#/components/schemas/BatchItem" in set(refs(batch))


def _key_schema(doc: dict[str, Any]) -> dict[str, Any]:
    params = doc["paths"]["/v1/videos"]["post"]["parameters"]
    return next(p for p in params if p["name"].lower() == "idempotency-key")["schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "key", ["a", "k" * 255, "two words", "r\u00e9sum\u00e9", "k" * 256, "a\x7fb", "a\u00a0b"]
)
def test_the_idempotency_key_is_documented_as_the_server_checks_it(
    doc: dict[str, Any], client: TestClient, key: str
) -> None:
    schema = _key_schema(doc)
    assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 255)
    documented = bool(re.search(schema["pattern"], key)) and len(key) <= schema["maxLength"]
    r = client.post(
        "/v1/creators",
        json={"handle": "x!", "display_name": "", "region": ""},  # invalid: nothing stored
        headers={"Idempotency-Key": key.encode("latin-1")},  # as on the wire
    )
    accepted = r.json()["error"]["code"] != "invalid_idempotency_key"
    assert documented == accepted, (key, r.text)


def test_metrics_are_documented_as_prometheus_text(doc: dict[str, Any], client: TestClient) -> None:
    content = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_readiness_documents_its_503(doc: dict[str, Any]) -> None:
    responses = doc["paths"]["/readyz"]["get"]["responses"]
    assert {"200", "503"} <= set(responses)
    assert "application/json" in responses["503"]["content"]


def test_graphql_documents_its_page_and_its_request(doc: dict[str, Any]) -> None:
    graphql = doc["paths"]["/graphql"]
    assert "text/html" in graphql["get"]["responses"]["200"]["content"]
    body = graphql["post"]["requestBody"]
    assert body["required"] is True and "application/json" in body["content"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/graphql", {"GET", "POST"}),
        ("PUT", "/v1/admin/rebuilds/some-job", {"GET", "DELETE"}),
        ("DELETE", "/v1/videos", {"POST"}),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"} == allowed


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)


def test_security_is_declared_and_matches_what_the_server_enforces(
    doc: dict[str, Any], client: TestClient
) -> None:
    """Found by schemathesis: without security schemes `ignored_auth` never ran. Every
    operation requires X-API-Key or a bearer token (401 without) unless its policy is
    public (`security: []`, answered without credentials); GraphQL's GET is both."""
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header",
                                 "name": "X-API-Key"}  # fmt: skip
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"ApiKey": []}, {"Bearer": []}]
    public = set()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            security = operation.get("security", doc["security"])
            if (path, method) == ("/graphql", "get"):
                assert security == [*doc["security"], {}], security  # the page is public
                continue
            unauthenticated = client.request(method, _filled(path), headers={"X-API-Key": ""})
            if security == []:
                public.add(path)
                assert unauthenticated.status_code == 200, (method, path)
                assert "401" not in operation["responses"], (method, path)
            else:
                assert security == doc["security"], (method, path)
                assert unauthenticated.status_code == 401, (method, path)
    assert public == {"/", "/healthz", "/readyz", "/metrics"}
