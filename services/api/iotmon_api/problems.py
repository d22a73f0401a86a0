"""Every error as RFC 9457 ``application/problem+json``: type, title, status, detail, instance.

``type`` is a URN naming the kind of problem (``urn:iotmon:problem:forbidden``);
errors raised by routing itself (unknown path, wrong method) are ``about:blank``
with the HTTP reason as title, as the RFC asks. Validation problems add
``errors``: one item per bad field, with its location as pydantic reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from iotmon_alerts.adapters.database import DatabaseUnavailable
from iotmon_registry import RegistryUnavailable
from iotmon_storage import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 5
_URN = "urn:iotmon:problem:"


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(
        description="What kind of problem: urn:iotmon:problem:<kind>, or about:blank.",
        examples=["urn:iotmon:problem:forbidden"],
    )
    title: str = Field(description="A short summary of the kind, the same every time.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for a person.")
    instance: str = Field(description="The request path this problem is about.")


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True)

    loc: list[str | int] = Field(description='Where: e.g. ["query", "limit"].')
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="Machine-readable error type (pydantic's).")


class ValidationProblem(Problem):
    """A problem with the request's parameters, listing each bad field."""

    model_config = ConfigDict(frozen=True)

    errors: list[FieldError]


class ApiProblem(Exception):
    """Raise to answer with a problem; ``kind`` becomes the type URN."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    kind: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class Unauthorized(ApiProblem):
    status_code = status.HTTP_401_UNAUTHORIZED
    kind = "unauthorized"
    title = "Missing or invalid token"

    def __init__(self, detail: str) -> None:
        # RFC 6750: say which scheme, and that the token (if any) was not accepted.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(ApiProblem):
    status_code = status.HTTP_403_FORBIDDEN
    kind = "forbidden"
    title = "Outside the token's scope"


class Conflict(ApiProblem):
    status_code = status.HTTP_409_CONFLICT
    kind = "conflict"
    title = "Conflicts with the current state"


class AlertsUnavailable(ApiProblem):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    kind = "alerts-unavailable"
    title = "Alert database unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_S)})


class NotFound(ApiProblem):
    status_code = status.HTTP_404_NOT_FOUND
    kind = "not-found"
    title = "Not found"


def problem(
    request: Request,
    status_code: int,
    title: str,
    detail: str,
    *,
    kind: str | None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{_URN}{kind}" if kind else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status_code, headers=headers, media_type=MEDIA_TYPE
    )


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(
        request, exc.status_code, exc.title, exc.detail, kind=exc.kind, headers=exc.headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Errors from routing and from FastAPI itself (404 unknown path, 405, bearer parsing)."""
    assert isinstance(exc, StarletteHTTPException)
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(request, exc.status_code, title, detail, kind=None, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": item["type"]}
        for item in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(
        request,
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "Invalid request parameters",
        f"{len(errors)} invalid parameter(s): {where}",
        kind="validation",
        errors=errors,
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    what = "unavailable" if isinstance(exc, StoreUnavailable) else "error"
    logger.warning("store error on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Time-series store unavailable",
        f"time-series store {what}: {str(exc)[:500]}",
        kind="store-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _registry_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("registry error on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Registry unavailable",
        f"registry unavailable: {str(exc)[:500]}",
        kind="registry-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _alerts_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("alert database error on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        AlertsUnavailable.title,
        f"alert database unavailable: {str(exc)[:500]}",
        kind=AlertsUnavailable.kind,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        request,
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal error",
        "the API failed to answer; the error is in its log",
        kind="internal",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RegistryUnavailable, _registry_error)
    app.add_exception_handler(DatabaseUnavailable, _alerts_error)
    app.add_exception_handler(Exception, _internal_error)
