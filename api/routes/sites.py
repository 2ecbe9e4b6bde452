"""GET /sites: the sites the service ingests from, and how it treats each."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep
from api.schemas import SitePublic
from crawler import sites

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=list[SitePublic])
def list_sites(settings: SettingsDep) -> list[SitePublic]:
    """Each site with its id, hosts, the URL forms it takes, and its pace (the operator's
    CRAWLER_DOWNLOAD_DELAY / CRAWLER_SITE_CONCURRENCY where set)."""
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
