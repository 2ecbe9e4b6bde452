"""Fixtures of the API's integration tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.utils import services


@pytest.fixture
def client_with(pg_db: str) -> Iterator[Callable[..., TestClient]]:
    """A client of an app built under these settings (API_KEYS=..., API_INGEST_RATE=...);
    the environment is restored after the test."""
    saved = dict(os.environ)
    clients: list[TestClient] = []

    def build(**env: str) -> TestClient:
        os.environ.update(env)
        services.clear_settings_caches()
        from main import create_app

        clients.append(TestClient(create_app()).__enter__())
        return clients[-1]

    yield build
    for client in clients:
        client.__exit__(None, None, None)
    os.environ.clear()
    os.environ.update(saved)
    services.clear_settings_caches()
