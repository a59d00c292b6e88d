"""The OpenAPI document: components for bodies the routes read themselves, and the parts
FastAPI cannot infer (schemathesis `--checks all` holds the served document to them).

The engagement routes decode their bodies with msgspec (bodies.py) and declare them with
`openapi_extra` references to the pydantic models of schemas.py, which stay the
documentation. FastAPI adds a model to the components only when a route takes it as a
parameter, so `document_models` adds these. `complete_document` then describes what the
code answers but FastAPI does not see: the Idempotency-Key limits, the batch body, the
Prometheus text of /metrics, the 503 of /readyz, the GraphQL endpoint and who must
authenticate (security schemes; the public operations say `security: []`).
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.routing import BaseRoute

from adapters.auth.policy import Policy, iter_routes, route_policy

REF = "#/components/schemas/{model}"
Document = dict[str, Any]

# What adapters/http/deps.py accepts: 1-255 characters, each printable (str.isprintable),
# of a header value as the server reads it (latin-1, surrounding blanks dropped by HTTP).
_FIRST_LAST = r"[!-~\u00a1-\u00ac\u00ae-\u00ff]"
_INNER = r"[ -~\u00a1-\u00ac\u00ae-\u00ff]"
IDEMPOTENCY_KEY_SCHEMA: Document = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": f"^{_FIRST_LAST}(?:{_INNER}{{0,253}}{_FIRST_LAST})?$",
}
IDEMPOTENCY_KEY_DESCRIPTION = (
    "Retry-safe key, 1-255 printable characters: a retry with the same key and body "
    "returns the first result (`replayed: true`); the same key with another body is 422 "
    "`idempotency_key_reused`, a malformed key 422 `invalid_idempotency_key`. Scoped by "
    "caller and route: another API key's or another route's same key is another key."
)


# adapters/auth/service.py: an API key in X-API-Key, or `Authorization: Bearer` with an API
# key or a JWT. Every operation needs one of them unless its policy is public.
SECURITY_SCHEMES: Document = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`rp_<id>_<secret>`)",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <JWT>` (REELPULSE_JWT_SECRET), or an API key",
    },
}
AUTHENTICATED = [{"ApiKey": []}, {"Bearer": []}]
Operation = tuple[str, str]  # (path, lower-case method)


def public_operations(routes: list[BaseRoute]) -> set[Operation]:
    """(path, method) of every route whose declared policy is public (health, readiness,
    metrics, the index): what callers without credentials may call."""
    public = set()
    for route in iter_routes(routes):
        policy = route_policy(route)
        if isinstance(policy, Policy) and policy.public:
            public |= {(route.path, method.lower()) for method in route.methods or ()}
    return public


def document_models(
    app: FastAPI, models: dict[str, Any], complete: Callable[[Document], None] | None = None
) -> None:
    """Add the JSON schemas of `models` (name -> pydantic model or annotated type) to the
    app's OpenAPI components, with the models they refer to; then `complete` the document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI's, cached in app.openapi_schema: completed in place
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in models.items():
            doc = TypeAdapter(model).json_schema(ref_template=REF)
            for inner, inner_doc in doc.pop("$defs", {}).items():
                components.setdefault(inner, inner_doc)
            components.setdefault(name, doc)
        if complete is not None:
            complete(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete_document(
    doc: Document, *, batch_max_items: int, public: set[Operation] | None = None
) -> None:
    """Describe what FastAPI cannot infer from the routes' signatures; `public`: the
    operations open to callers without credentials (public_operations)."""
    _security(doc, public or set())
    for operation in _operations(doc):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key":
                parameter["schema"] = dict(IDEMPOTENCY_KEY_SCHEMA)
                parameter["description"] = IDEMPOTENCY_KEY_DESCRIPTION
    paths = doc.get("paths", {})
    if "/v1/engagement/batch" in paths:
        _batch(paths["/v1/engagement/batch"]["post"], batch_max_items)
    if "/metrics" in paths:
        _metrics(paths["/metrics"]["get"])
    if "/readyz" in paths:
        _readyz(paths["/readyz"]["get"])
    if "/graphql" in paths:
        _graphql(paths["/graphql"], doc["components"]["schemas"])
    if "delete" in paths.get("/v1/admin/rebuilds/{job_id}", {}):
        _stop_rebuild(paths["/v1/admin/rebuilds/{job_id}"]["delete"])


def _operations(doc: Document) -> Iterator[Document]:
    for _, _, operation in _methods(doc):
        yield operation


def _methods(doc: Document) -> Iterator[tuple[str, str, Document]]:
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "options", "head"}:
                yield path, method, operation


def _security(doc: Document, public: set[Operation]) -> None:
    """Credentials everywhere but on public operations, which neither need them nor answer
    401/403. GraphQL's GET is both (credentials optional: `{}`): its query page is public,
    a `?query=` needs a key (adapters/graphql/router.py)."""
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    doc["security"] = AUTHENTICATED
    for path, method, operation in _methods(doc):
        if (path, method) in public:
            operation["security"] = []
            for status in ("401", "403"):
                operation.get("responses", {}).pop(status, None)
    if "get" in doc.get("paths", {}).get("/graphql", {}):
        doc["paths"]["/graphql"]["get"]["security"] = [*AUTHENTICATED, {}]


def _batch(operation: Document, max_items: int) -> None:
    """Items are validated one by one: an item that is not a BatchItem is rejected in its
    own result (200, status `rejected`), not the request, so any JSON value is a valid
    item of the request; an empty batch is 422, more than the limit 413."""
    item = {
        "anyOf": [
            {"$ref": REF.format(model="BatchItem")},
            {"description": "any other JSON value: answered `rejected` in its own result"},
        ]
    }
    items = {"type": "array", "items": item, "minItems": 1}
    limit = (
        f"1 to {max_items} items (REELPULSE_BATCH_MAX_ITEMS; more: 413 batch_too_large, "
        "none: 422 empty_batch)"
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {"items": items},
                            "required": ["items"],
                        },
                        items,
                    ],
                    "description": f'`{{"items": [...]}}` or a bare array of {limit}',
                }
            },
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": f"one JSON item per line, {limit}; a line that is not "
                    "JSON fails the request (422 invalid_json)",
                }
            },
        },
    }


def _metrics(operation: Document) -> None:
    operation["responses"] = {
        "200": {
            "description": "Prometheus text exposition format (`text/plain; version=0.0.4` "
            "or, from newer prometheus_client releases, `version=1.0.0`)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }


READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "description": "ready, degraded, not_ready, unavailable"},
        "checks": {"type": "object", "description": "event_store, read_models, projections"},
    },
    "required": ["status", "checks"],
}


def _readyz(operation: Document) -> None:
    content = {"application/json": {"schema": READINESS}}
    operation["responses"] = {
        "200": {"description": "Ready (or degraded: serving, with events quarantined)",
                "content": content},
        "503": {"description": "Not ready: the event store does not answer (within 1 s), "
                "a projection is failing or further behind than the lag bound",
                "content": content},
    }  # fmt: skip


GRAPHQL_REQUEST = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "description": "a GraphQL document (an empty one is 400)",
        },
        "variables": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "operationName": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "extensions": {"anyOf": [{"type": "object"}, {"type": "null"}]},
    },
    "required": ["query"],
}
GRAPHQL_RESPONSE = {
    "type": "object",
    "description": "GraphQL over HTTP: `data` and/or `errors` (an invalid document is 200 "
    "with errors)",
    "properties": {
        "data": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "errors": {"type": "array", "items": {"type": "object"}},
        "extensions": {"type": "object"},
    },
}


def _graphql(item: Document, components: Document) -> None:
    components.setdefault("GraphQLRequest", GRAPHQL_REQUEST)
    components.setdefault("GraphQLResponse", GRAPHQL_RESPONSE)
    answer = {"application/json": {"schema": {"$ref": REF.format(model="GraphQLResponse")}}}
    if "get" in item:
        get = item["get"]
        get["summary"] = "The GraphQL query page"
        get["description"] = (
            "In development (REELPULSE_DEVELOPMENT): a query page for browsers (HTML); "
            "`?query=` runs a query as GraphQL over HTTP (JSON). Otherwise 404."
        )
        get["responses"]["200"] = {
            "description": "The query page, or a query's answer",
            "content": {"text/html": {"schema": {"type": "string"}}, **answer},
        }
        get["responses"]["404"] = {"description": "The page is off (production)"}
    if "post" in item:
        post = item["post"]
        post["summary"] = "Run a GraphQL operation"
        post["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model="GraphQLRequest")}}
            },
        }
        post["responses"]["200"] = {"description": "The answer", "content": answer}
        post["responses"]["400"] = {
            "description": "Not a GraphQL request (no query, variables not an object, a body "
            "that is not JSON): GraphQL errors",
            "content": answer,
        }


def _stop_rebuild(operation: Document) -> None:
    """DELETE of a rebuild job stops the job; it does not remove its record."""
    operation["summary"] = "Stop a rebuild job"
    operation["description"] = (
        "Asks the job to stop after its current batch and answers at once (202). The job's "
        "record is kept: GET shows it `running` until that batch ends, then `stopped`; its "
        "shadow tables stay, and a new rebuild of the same projections resumes from them."
    )
    operation["responses"]["202"]["description"] = "Stop requested: the job, as it is now"
