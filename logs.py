"""Logging for every process: one line per event, as text or JSON (LOG_FORMAT=json).

`configure(settings)` gives the root logger one stderr handler. Records of every logger
(the service's, RQ's, Scrapy's in a work-horse) go through it, and through two filters:
`ContextFilter` adds the job id, site and phase of the run the line is about (set by
ingestion.Run with `job_context` / `bind`, cleared when the run ends), and
errors.RedactingFilter takes credentials out. JSON lines carry them as fields (`job_id`,
`site`, `phase`), text lines as `job=5 site=royalroad phase=crawl` before the message.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from config import Settings
from errors import RedactingFilter, redact_logs

CONTEXT_FIELDS = ("job_id", "site", "phase")
TEXT_FORMAT = "%(asctime)s %(name)s %(context)s%(message)s"  # the worker's
CLI_FORMAT = "%(asctime)s %(levelname)s %(name)s %(context)s%(message)s"
API_FORMAT = "%(levelname)s:     %(context)s%(message)s"  # as uvicorn's own lines
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("log_context", default=_EMPTY)
_OURS = "_novel_ingest_handler"  # marks the handler configure() installed


@contextmanager
def job_context(**fields: object) -> Iterator[None]:
    """Within the block, every record carries these fields (and those bound in it)."""
    token = _context.set(MappingProxyType({**_context.get(), **fields}))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Change fields of the current context (the run's phase); undone when the
    surrounding job_context ends."""
    _context.set(MappingProxyType({**_context.get(), **fields}))


def current() -> Mapping[str, object]:
    return _context.get()


class ContextFilter(logging.Filter):
    """Puts the current job context on each record, as attributes, where it applies."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """A format with `%(context)s`: the record's job fields, or nothing."""

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            f"{label}={getattr(record, name)}"
            for name, label in zip(CONTEXT_FIELDS, ("job", "site", "phase"), strict=True)
            if getattr(record, name, None) is not None
        ]
        record.context = " ".join(fields) + " " if fields else ""
        return super().format(record)


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter, one object per line, with the traceback the
    RedactingFilter cleaned (the library would format the exception afresh)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", JSON_NAMES)
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args or (JSON_FIELDS,), **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        exc_info = record.exc_info
        if record.exc_text:
            record.exc_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info


def formatter(settings: Settings, text_format: str = TEXT_FORMAT) -> logging.Formatter:
    if settings.log_format == "json":
        return JsonLineFormatter()
    return TextFormatter(text_format)


def configure(
    settings: Settings, *, level: int | str | None = None, text_format: str = TEXT_FORMAT
) -> logging.Handler:
    """Set up the root logger: one stderr handler (a second call replaces it)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings, text_format))
    handler.addFilter(ContextFilter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level if level is not None else settings.log_level)
    redact_logs()
    logging.captureWarnings(True)  # warnings.warn lines are log lines too (JSON included)
    return handler


def uvicorn_config(settings: Settings) -> dict[str, Any]:
    """Uvicorn's own logging set-up, with credentials removed and job fields added to
    every line; JSON lines when LOG_FORMAT=json."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    filters = config.setdefault("filters", {})
    filters["context"] = {"()": f"{__name__}.ContextFilter"}
    filters["redact"] = {"()": f"{RedactingFilter.__module__}.RedactingFilter"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).extend(["context", "redact"])
    if settings.log_format == "json":
        for name in config["formatters"]:
            config["formatters"][name] = {"()": f"{__name__}.JsonLineFormatter"}
    return config
