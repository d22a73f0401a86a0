"""The OpenAPI document, completed: every error the API can answer, as problem+json.

FastAPI documents 200 and its own 422 model; this adds, for every operation
under /api, 401 and 403 (any token-guarded route can answer them), 503 (store
or registry unreachable, with Retry-After), the route's own 404, and 422 as a
ValidationProblem, all as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from iotmon_api.problems import MEDIA_TYPE, Problem, ValidationProblem

_PROBLEM = "#/components/schemas/Problem"
_VALIDATION_PROBLEM = "#/components/schemas/ValidationProblem"

_GUARDED = {
    "401": "Missing, unknown, expired or revoked token.",
    "403": "The token's principal may not read this (another tenant, site or child).",
    "503": "The time-series store, the registry or the alert database is unreachable (or "
    "not configured); retry after Retry-After.",
}


def _problem(description: str, schema: str = _PROBLEM) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": schema}}}}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses to ``document`` (FastAPI's generated one), in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, ValidationProblem):
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas[model.__name__] = generated
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/api/"):
                for code, description in _GUARDED.items():
                    responses[code] = _problem(description)
                responses["401"]["headers"] = {
                    "WWW-Authenticate": {
                        "description": 'Bearer, with error="invalid_token".',
                        "schema": {"type": "string"},
                    }
                }
                responses["503"]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer"},
                    }
                }
            for code in ("404", "409"):
                if code in responses:
                    responses[code] = _problem(responses[code].get("description", "Refused."))
            if operation.get("parameters") or operation.get("requestBody"):
                responses["422"] = _problem(
                    "A parameter is invalid; errors lists each one.", _VALIDATION_PROBLEM
                )
            else:
                responses.pop("422", None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
