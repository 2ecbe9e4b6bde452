"""Site adapters and the registry that picks one for a URL.

Every module of this package that defines an `ADAPTER` is a site: adding a site is adding
its module (and its tests), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from urllib.parse import urlsplit

from config import Settings
from crawler.items import FictionRef
from crawler.sites.base import Politeness, SiteAdapter
from errors import InvalidURLError, UnsupportedSiteError

# What a URL pasted from prose ends with: "(see https://.../works/77)." is /works/77.
TRAILING = ").,;:!?>\"'"


def _discover() -> dict[str, SiteAdapter]:
    found: dict[str, SiteAdapter] = {}
    for module in pkgutil.iter_modules(__path__):
        adapter = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ADAPTER", None)
        if adapter is None:
            continue
        if adapter.name in found:
            raise RuntimeError(f"two site modules call themselves {adapter.name!r}")
        shared = {h for other in found.values() for h in other.hosts} & set(adapter.hosts)
        if shared:
            raise RuntimeError(f"site {adapter.name!r} claims hosts of another: {shared}")
        found[adapter.name] = adapter
    return found


ADAPTERS: dict[str, SiteAdapter] = _discover()


def politeness(adapter: SiteAdapter, settings: Settings) -> Politeness:
    """The pace of one site, most specific first: CRAWLER_SITE_DELAYS for the site, else
    CRAWLER_DOWNLOAD_DELAY (every site), else the site's own; CRAWLER_SITE_CONCURRENCY,
    else the site's own."""
    site = adapter.politeness
    delay = settings.site_delays.get(adapter.name, settings.crawler_download_delay)
    concurrency = settings.crawler_site_concurrency
    return Politeness(
        download_delay=site.download_delay if delay is None else delay,
        concurrent_requests=site.concurrent_requests if concurrency is None else concurrency,
    )


def supported_sites() -> str:
    return "; ".join(f"{a.display_name} (e.g. {a.example_url})" for a in ADAPTERS.values())


def resolve(url: str, *, aliases: Mapping[str, str]) -> tuple[SiteAdapter, FictionRef]:
    """Pick the adapter for `url` and normalize it; raise a typed error saying what is wrong.

    A URL with credentials (user:password@) is refused, and no message repeats a URL
    that holds an "@": the secret in it is never echoed, stored or sent to a site.
    """
    url = url.strip().rstrip(TRAILING)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError as error:  # e.g. "https://[::1/..." or "host:99999"
        detail = f": {error}" if "@" not in url else ""  # the port may be a password
        raise InvalidURLError(f"{_shown(url)} is not a valid URL{detail}") from None
    if "@" in parts.netloc:
        raise InvalidURLError(
            "a URL with a user name or password (user:password@host) is refused: "
            "send the fiction's URL without them"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURLError(f"{_shown(url)} is not an http(s) URL")
    host = parts.hostname.lower()
    host_port = f"{host}:{port}" if port else host
    site = aliases.get(host_port)
    if site is None and port in (None, 80, 443):  # an alias without a port: 80, 443 only
        site = aliases.get(host)
    if site is not None:
        return _adapter(site), _fiction(_adapter(site), url, f"{parts.scheme}://{host_port}")
    for adapter in ADAPTERS.values():
        if host in adapter.hosts:
            return adapter, _fiction(adapter, url, f"https://{adapter.hosts[0]}")
    raise UnsupportedSiteError(f"{host} is not a supported site; supported: {supported_sites()}")


def _shown(url: str) -> str:
    """`url` quoted for a message, unless it holds an "@" (perhaps user:password@)."""
    return repr(url) if "@" not in url else "this URL"


def _fiction(adapter: SiteAdapter, url: str, base: str) -> FictionRef:
    """adapter.fiction_ref, its error told without the URL if that holds an "@"."""
    try:
        return adapter.fiction_ref(url, base=base)
    except InvalidURLError:
        if "@" not in url:
            raise
        forms = ", ".join(adapter.url_patterns)
        raise InvalidURLError(
            f"this URL is not a {adapter.display_name} fiction URL; use {forms}"
        ) from None


def _adapter(site: str) -> SiteAdapter:
    try:
        return ADAPTERS[site]
    except KeyError:
        raise UnsupportedSiteError(f"alias names unknown site {site!r}") from None
