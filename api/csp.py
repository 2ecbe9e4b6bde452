"""Content-Security-Policy values: none at all for the API's answers, and for an HTML page
(/docs, /redoc) exactly the assets that page loads.

A page's policy is read off the page FastAPI renders (its asset URLs are FastAPI's own
defaults): the origins of its scripts, stylesheets and icons, and a hash of each inline
script, so the policy follows FastAPI's pages wherever they point and nothing else runs.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import urlsplit

NONE, SELF, UNSAFE_INLINE = "'none'", "'self'", "'unsafe-inline'"
# Every answer but an HTML page: it loads nothing, runs nothing, is framed nowhere.
LOCKED = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@dataclass
class Assets:
    scripts: set[str] = field(default_factory=set)  # origins of <script src>
    inline_hashes: set[str] = field(default_factory=set)  # 'sha256-...' of inline scripts
    styles: set[str] = field(default_factory=set)  # origins of stylesheets
    images: set[str] = field(default_factory=set)  # origins of icons and images


def origin(url: str) -> str:
    """The CSP source of an asset URL: its scheme and host, or 'self' for a relative one."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else SELF


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
        if tag == "script":
            if found.get("src"):
                self.assets.scripts.add(origin(found["src"]))
            else:
                self._inline = []
        elif tag == "link" and found.get("href"):
            kind = self.assets.styles if "stylesheet" in found.get("rel", "") else None
            (kind if kind is not None else self.assets.images).add(origin(found["href"]))
        elif tag == "img" and found.get("src"):
            self.assets.images.add(origin(found["src"]))

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


def _sources(*groups: set[str] | tuple[str, ...]) -> str:
    found = sorted({source for group in groups for source in group})
    return " ".join(found) if found else NONE


@lru_cache(maxsize=16)
def page_policy(html: str) -> str:
    """The policy of one HTML page. Styles may be inline: both documentation pages write
    theirs at run time (ReDoc's styled components); the API fetched is this one; ReDoc's
    search runs in a worker made from a blob."""
    assets = read_assets(html)
    directives = [
        f"default-src {NONE}",
        f"script-src {_sources(assets.scripts, assets.inline_hashes)}",
        f"style-src {_sources(assets.styles, (UNSAFE_INLINE,))}",
        f"img-src {_sources(assets.images, (SELF, 'data:'))}",
        f"font-src {_sources(assets.styles, ('data:',))}",
        f"connect-src {SELF}",
        "worker-src blob:",
        f"frame-ancestors {NONE}",
        f"base-uri {NONE}",
        f"form-action {NONE}",
    ]
    return "; ".join(directives)
