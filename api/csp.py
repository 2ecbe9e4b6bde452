"""Content-Security-Policy values: none at all for the API's answers, and for an HTML page
(/docs, /redoc) its own origin's assets and the inline scripts it carries.

The documentation pages load Swagger UI and ReDoc from this app (api/openapi.py serves
fastapi-offline's copies), so assets come from 'self' only: a page that pointed at a CDN
would have that asset blocked, not allowed. Each inline script is allowed by its hash,
read off the page FastAPI renders, so nothing else runs.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser

NONE, SELF, UNSAFE_INLINE = "'none'", "'self'", "'unsafe-inline'"
# Every answer but an HTML page: it loads nothing, runs nothing, is framed nowhere.
LOCKED = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@dataclass
class Assets:
    urls: list[str] = field(default_factory=list)  # <script src>, <link href>, <img src>
    inline_hashes: set[str] = field(default_factory=set)  # 'sha256-...' of inline scripts


def script_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class _AssetReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.assets = Assets()
        self._inline: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "script" and not found.get("src"):
            self._inline = []
        url = found.get("href") if tag == "link" else found.get("src")
        if tag in ("script", "link", "img") and url:
            self.assets.urls.append(url)

    def handle_data(self, data: str) -> None:
        if self._inline is not None:
            self._inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inline is not None:
            self.assets.inline_hashes.add(script_hash("".join(self._inline)))
            self._inline = None


def read_assets(html: str) -> Assets:
    reader = _AssetReader()
    reader.feed(html)
    reader.close()
    return reader.assets


@lru_cache(maxsize=16)
def page_policy(html: str) -> str:
    """The policy of one HTML page. Styles may be inline: both documentation pages write
    theirs at run time (ReDoc's styled components); the API fetched is this one; ReDoc's
    search runs in a worker made from a blob."""
    inline = sorted(read_assets(html).inline_hashes)
    directives = [
        f"default-src {NONE}",
        " ".join(["script-src", SELF, *inline]),
        f"style-src {SELF} {UNSAFE_INLINE}",
        f"img-src {SELF} data:",
        f"font-src {SELF} data:",
        f"connect-src {SELF}",
        "worker-src blob:",
        f"frame-ancestors {NONE}",
        f"base-uri {NONE}",
        f"form-action {NONE}",
    ]
    return "; ".join(directives)
