"""OpenAPI components for bodies the routes read themselves.

The engagement routes decode their bodies with msgspec (bodies.py) and declare them with
`openapi_extra` references to the pydantic models of schemas.py, which stay the
documentation. FastAPI adds a model to the components only when a route takes it as a
parameter, so `document_models` adds these.
"""

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"


def document_models(app: FastAPI, models: dict[str, Any]) -> None:
    """Add the JSON schemas of `models` (name -> pydantic model or annotated type) to the
    app's OpenAPI components, with the models they refer to."""
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
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
