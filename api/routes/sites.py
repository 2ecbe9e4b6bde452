"""GET /sites: the sites the service ingests from, and how it treats each."""

from __future__ import annotations

from fastapi import APIRouter

from api import openapi
from api.auth import READ
from api.deps import SettingsDep
from api.schemas import SitePublic
from crawler import sites

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get(
    "",
    response_model=list[SitePublic],
    dependencies=[READ],
    responses=openapi.errors(401, 403),
)
def list_sites(settings: SettingsDep) -> list[SitePublic]:
    """Each site with its id, hosts, the URL forms it takes, and its pace: the seconds
    between two requests to the site and the requests in flight to it at once, both
    counted over every worker on every host (kept in Redis). The interval is
    CRAWLER_SITE_DELAYS for the site, else CRAWLER_DOWNLOAD_DELAY, else the site's own;
    the cap CRAWLER_SITE_CONCURRENCY, else the site's own. A 429 or 503 with Retry-After
    pauses the site for every worker."""
    return [_public(adapter, settings) for adapter in sites.ADAPTERS.values()]


def _public(adapter: sites.SiteAdapter, settings: SettingsDep) -> SitePublic:
    pace = sites.politeness(adapter, settings)
    return SitePublic(
        id=adapter.name,
        name=adapter.display_name,
        hosts=list(adapter.hosts),
        url_patterns=list(adapter.url_patterns),
        example_url=adapter.example_url,
        download_delay=pace.download_delay,
        concurrent_requests=pace.concurrent_requests,
    )
