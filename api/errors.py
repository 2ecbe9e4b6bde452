"""Map the service's typed errors to HTTP answers: always JSON, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from crawler.sites import supported_sites
from errors import (
    InvalidURLError,
    NotFoundError,
    QueueUnavailableError,
    StorageUnavailableError,
    UnsupportedSiteError,
    safe_message,
)

log = logging.getLogger(__name__)


def _json(code: int, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": detail, **extra})


def _problem(error: Mapping[str, Any]) -> dict[str, Any]:
    """Where and what, never the input: pydantic's `input` and `ctx` hold the values sent
    (a URL with its credentials), so neither is answered, and the message is cleaned too."""
    loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
    return {
        "loc": loc,
        "msg": safe_message(str(error.get("msg", "")), limit=200),
        "type": str(error.get("type", "")),
    }


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_problem(e) for e in exc.errors()]
    described = []
    for problem in problems:
        where = ".".join(str(p) for p in problem["loc"] if p != "body") or "body"
        described.append(f"{where}: {problem['msg']}")
    detail = "invalid request: " + "; ".join(described)
    if any(p["type"] == "json_invalid" for p in problems):
        detail = "invalid request: the body is not valid JSON"
    return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, detail, errors=problems)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, but a body it could not decode (bytes that are
    not UTF-8) is bad JSON like any other: 422, not FastAPI's 400."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(
        exc.__cause__, UnicodeDecodeError
    ):
        problem = {"loc": ["body"], "msg": "not UTF-8", "type": "json_invalid"}
        detail = "invalid request: the body is not valid JSON"
        return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, detail, errors=[problem])
    return await http_exception_handler(request, exc)


async def _bad_url(request: Request, exc: Exception) -> JSONResponse:
    # The message names the URL for the user's sake; without any credentials it held.
    return _json(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        safe_message(str(exc)),
        supported_sites=supported_sites(),
    )


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _json(status.HTTP_404_NOT_FOUND, str(exc))


async def _storage_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _json(status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable, try again shortly")


async def _queue_down(request: Request, exc: Exception) -> JSONResponse:
    return _json(status.HTTP_503_SERVICE_UNAVAILABLE, "queue unavailable, try again shortly")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InvalidURLError, _bad_url)
    app.add_exception_handler(UnsupportedSiteError, _bad_url)
    app.add_exception_handler(NotFoundError, _not_found)
    # Only what an outage raises: a data or integrity error is a bug, and a 500 says so.
    for storage_error in (OperationalError, InterfaceError, PoolTimeout, StorageUnavailableError):
        app.add_exception_handler(storage_error, _storage_down)
    app.add_exception_handler(QueueUnavailableError, _queue_down)
