from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import Settings, parse_aliases


def test_aliases_parse_hosts_with_ports() -> None:
    assert parse_aliases(" 127.0.0.1:8765=royalroad, Mirror.Example=RoyalRoad ,") == {
        "127.0.0.1:8765": "royalroad",
        "mirror.example": "royalroad",
    }


@pytest.mark.parametrize("raw", ["127.0.0.1:8765", "=royalroad", "host="])
def test_malformed_aliases_are_refused_at_start(raw: str) -> None:
    with pytest.raises(ValidationError, match="host\\[:port\\]=site"):
        Settings(crawler_site_aliases=raw)


def test_defaults_run_without_any_server_but_redis() -> None:
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert defaults["database_url"].startswith("sqlite:///")
    assert defaults["redis_url"] == "redis://127.0.0.1:6379/0"
    assert defaults["queue_name"] == "ingestion"
    assert defaults["job_timeout"] == 3600
