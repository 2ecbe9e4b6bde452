"""What a fixture-site route answers, whichever site's look-alike it serves."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Location": "/works/1"}


@dataclass(frozen=True)
class Asked:
    """One request as a route sees it."""

    method: str  # "GET" or "POST"
    path: str  # without the query
    query: dict[str, list[str]]  # parsed query string
    form: dict[str, list[str]]  # parsed application/x-www-form-urlencoded body (POST)
