"""The OpenAPI document, told truthfully: every error an operation can answer, documented
with the one error body, and the security schemes on the operations that need a key
under this process's settings (none when API_KEYS is unset). And the pages that show it,
/docs (Swagger UI) and /redoc, with their scripts served by this app: they load with no
internet."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import metadata, resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from api.auth import Access, needs_key, read_access, write_access
from api.schemas import ErrorBody
from config import Settings

WHY: dict[int, str] = {
    401: "no API key (API_KEYS set; for a read, API_READ_AUTH=true too)",
    403: "an API key that is none of API_KEYS, or a write from another site",
    404: "no such job, novel or chapter",
    409: "the job has already ended",
    413: "request body over API_MAX_BODY_BYTES",
    415: "a write whose body is not JSON",
    422: "invalid parameters or body: bad JSON, a bad URL or an unsupported site",
    429: "over API_INGEST_RATE for this caller",
    503: "database or queue unavailable, try again shortly",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "seconds until the caller may submit again",
            "schema": {"type": "integer"},
        }
    },
}
READ_ERRORS = (401, 403, 422, 503)
WRITE_ERRORS = (401, 403, 415, 422, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each with ErrorBody."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        documented[code] = {"model": ErrorBody, "description": WHY[code]}
        if code in HEADERS:
            documented[code]["headers"] = HEADERS[code]
    return documented


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found = {dependant.call} if dependant.call is not None else set()
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def route_access(route: APIRoute) -> Access | None:
    calls = _calls(route.dependant)
    if write_access in calls:
        return Access.WRITE
    return Access.READ if read_access in calls else None


def _keyless(app: FastAPI, settings: Settings) -> dict[tuple[str, str], Access | None]:
    """(path, method) of each operation that needs no key under `settings`: its access."""
    keyless: dict[tuple[str, str], Access | None] = {}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        access = route_access(route)
        if access is None or not needs_key(
            access, keys=settings.api_key_list, read_auth=settings.api_read_auth
        ):
            keyless |= {(route.path_format, method.lower()): access for method in route.methods}
    return keyless


def _unlock(operation: dict[str, Any], access: Access | None) -> None:
    """No key asked: no security requirement, no 401; a read no 403 either (a write is
    still 403 from another site)."""
    operation.pop("security", None)
    operation.get("responses", {}).pop("401", None)
    if access is not Access.WRITE:
        operation.get("responses", {}).pop("403", None)


def install(app: FastAPI, settings: Settings) -> None:
    """Document the keys each operation needs under `settings`, and no more."""
    generate = app.openapi

    def honest() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for (path, method), access in _keyless(app, settings).items():
                _unlock(schema["paths"].get(path, {}).get(method, {}), access)
        return app.openapi_schema or {}

    app.openapi = honest  # type: ignore[method-assign]


# Swagger UI's and ReDoc's files as fastapi-offline ships them; its version is in the URL,
# so a browser may keep them until an upgrade changes the URL.
DOCS_ASSETS = resources.files("fastapi_offline") / "static"
DOCS_ASSETS_URL = f"/docs-assets/{metadata.version('fastapi-offline')}"
DOCS_ASSETS_CACHE = "public, max-age=31536000, immutable"


class DocsAssets(StaticFiles):
    """The documentation pages' scripts, stylesheet and icon, cached by browsers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = DOCS_ASSETS_CACHE
        return response


def serve_docs(app: FastAPI, *, docs_url: str, redoc_url: str) -> None:
    """Swagger UI at `docs_url` and ReDoc at `redoc_url`, their assets from this app."""
    app.mount(DOCS_ASSETS_URL, DocsAssets(directory=str(DOCS_ASSETS)), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def _root(request: Request) -> str:
    """The prefix a proxy serves the app under (uvicorn --root-path), else ""."""
    return str(request.scope.get("root_path", ""))
