"""Log set-up: one line per event, the run's job fields on every record, credentials out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import logs
from config import Settings, get_settings

SECRET_URL = "redis://user:s3cret-pw@redis.internal:6379/0"


def _record(message: str = "hello %s", *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionError(f"cannot reach {SECRET_URL}")
        except ConnectionError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("ingestion", logging.INFO, __file__, 1, message, args, exc_info)


def _through_filters(record: logging.LogRecord) -> logging.LogRecord:
    logs.ContextFilter().filter(record)
    from errors import RedactingFilter

    RedactingFilter().filter(record)
    return record


def _settings(log_format: str) -> Settings:
    return get_settings().model_copy(update={"log_format": log_format})


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_a_job_context_puts_its_fields_on_records_until_it_ends() -> None:
    with logs.job_context(job_id=7, phase="claim"):
        logs.bind(site="royalroad")
        logs.bind(phase="crawl")
        inside = _through_filters(_record())
    outside = _through_filters(_record())
    assert (inside.job_id, inside.site, inside.phase) == (7, "royalroad", "crawl")  # type: ignore[attr-defined]
    assert not any(hasattr(outside, name) for name in logs.CONTEXT_FIELDS)
    assert logs.current() == {}


def test_text_lines_show_the_job_fields_before_the_message() -> None:
    formatter = logs.TextFormatter("%(name)s %(context)s%(message)s")
    with logs.job_context(job_id=7, site="ao3", phase="save"):
        line = formatter.format(_through_filters(_record("done %s", "now")))
    assert line == "ingestion job=7 site=ao3 phase=save done now"
    assert formatter.format(_through_filters(_record("idle"))) == "ingestion idle"


def test_json_lines_are_one_object_with_the_fields_and_no_credentials() -> None:
    formatter = logs.JsonLineFormatter()
    with logs.job_context(job_id=3, site="royalroad", phase="crawl"):
        record = _through_filters(_record("fetching %s", SECRET_URL, exc=True))
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["job_id"] == 3 and data["site"] == "royalroad" and data["phase"] == "crawl"
    assert data["level"] == "INFO" and data["logger"] == "ingestion" and "time" in data
    assert data["message"] == "fetching redis://redis.internal:6379/0"
    assert "ConnectionError" in data["exc_info"]
    assert "s3cret-pw" not in line


@pytest.mark.parametrize(
    ("log_format", "kind"), [("text", logs.TextFormatter), ("json", logs.JsonLineFormatter)]
)
def test_configure_installs_one_redacting_handler_however_often_it_is_called(
    root_handlers: None,
    log_format: str,
    kind: type[logging.Formatter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(_settings("text"))
    handler = logs.configure(_settings(log_format), level="INFO")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_novel_ingest_handler", False)]
    assert ours == [handler]
    assert isinstance(handler.formatter, kind)
    with logs.job_context(job_id=9, site="ao3", phase="parse"):
        logging.getLogger("ingestion").warning("cannot reach %s", SECRET_URL)
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err
    assert "cannot reach redis://redis.internal:6379/0" in err
    assert (
        ("job=9 site=ao3 phase=parse" in err)
        if log_format == "text"
        else json.loads(err)["job_id"] == 9
    )


def test_uvicorns_config_redacts_and_adds_fields_and_turns_to_json() -> None:
    config = logs.uvicorn_config(_settings("json"))
    for handler in config["handlers"].values():
        assert {"context", "redact"} <= set(handler["filters"])
    assert {f["()"] for f in config["formatters"].values()} == {"logs.JsonLineFormatter"}
    text = logs.uvicorn_config(_settings("text"))
    assert "logs.JsonLineFormatter" not in json.dumps(text["formatters"])
