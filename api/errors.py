"""Map the service's typed errors to HTTP answers: always JSON, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from crawler.sites import supported_sites
from errors import (
    InvalidURLError,
    NotFoundError,
    QueueUnavailableError,
    StorageUnavailableError,
    UnsupportedSiteError,
)

log = logging.getLogger(__name__)


def _json(code: int, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": detail, **extra})


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {error.get('msg')}")
    detail = "invalid request: " + "; ".join(problems)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        detail = "invalid request: the body is not valid JSON"
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, detail, errors=errors)


async def _bad_url(request: Request, exc: Exception) -> JSONResponse:
    return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), supported_sites=supported_sites())


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _json(status.HTTP_404_NOT_FOUND, str(exc))


async def _storage_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _json(status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable, try again shortly")


async def _queue_down(request: Request, exc: Exception) -> JSONResponse:
    return _json(status.HTTP_503_SERVICE_UNAVAILABLE, "queue unavailable, try again shortly")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidURLError, _bad_url)
    app.add_exception_handler(UnsupportedSiteError, _bad_url)
    app.add_exception_handler(NotFoundError, _not_found)
    # Only what an outage raises: a data or integrity error is a bug, and a 500 says so.
    for storage_error in (OperationalError, InterfaceError, PoolTimeout, StorageUnavailableError):
        app.add_exception_handler(storage_error, _storage_down)
    app.add_exception_handler(QueueUnavailableError, _queue_down)
