"""The HTTP API. `python main.py` serves it on API_HOST:API_PORT: API_HOST unset is
0.0.0.0 when API_KEYS are set, else 127.0.0.1 (see api/binding.py)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

import logs
from api import binding, errors, openapi, throttle
from api.middleware import BodyLimit, SecurityHeaders
from api.routes import events, health, ingest, jobs, novels, sites, stats
from api.routes import metrics as metrics_route
from config import Settings, get_settings

log = logging.getLogger("novel_ingest.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    throttle.parse_rate(settings.api_ingest_rate)  # a bad API_INGEST_RATE fails here
    app = FastAPI(
        title="Novel ingestion service",
        description="Send a fiction URL, follow the job, read the novel and its chapters.",
        version="0.1.0",
        docs_url=None,  # FastAPI's own pages load their scripts from a CDN: ours do not
        redoc_url=None,
    )
    openapi.serve_docs(app, docs_url="/docs", redoc_url="/redoc")
    every_operation = openapi.errors(413)
    for module in (ingest, jobs, events, novels, sites, stats, health, metrics_route):
        app.include_router(module.router, responses=every_operation)
    errors.install(app)
    openapi.install(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    # Starlette's own check of the Host header: with no keys, only loopback names
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)  # outermost: a 413 carries the headers too
    return app


app = create_app()


def main() -> None:
    import uvicorn

    settings = get_settings()
    try:
        bind = binding.choose_bind(
            api_host=settings.api_host,
            has_keys=bool(settings.api_key_list),
            allow_anonymous=settings.api_allow_anonymous,
        )
    except binding.UnsafeBindError as error:
        raise SystemExit(f"novel-ingest API: {error}") from None
    logs.configure(settings, text_format=logs.API_FORMAT)
    if bind.open:
        log.warning(
            "the API is open (no API_KEYS): whoever reaches %s:%s may submit and cancel jobs",
            bind.host,
            settings.api_port,
        )
    uvicorn.run(
        "main:app",
        host=bind.host,
        port=settings.api_port,
        log_level="info",
        log_config=logs.uvicorn_config(settings),
    )


if __name__ == "__main__":
    main()
