"""The HTTP API. `python main.py` serves it on API_HOST:API_PORT (default 0.0.0.0:8000)."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.routes import health, ingest, jobs, novels, sites
from config import get_settings


def create_app() -> FastAPI:
    app = FastAPI(
        title="Novel ingestion service",
        description="Send a fiction URL, follow the job, read the novel and its chapters.",
        version="0.1.0",
    )
    for module in (ingest, jobs, novels, sites, health):
        app.include_router(module.router)
    errors.install(app)
    return app


app = create_app()


def main() -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run("main:app", host=settings.api_host, port=settings.api_port, log_level="info")


if __name__ == "__main__":
    main()
