"""One settings object, read from the environment and `.env`.

Every setting is listed in `.env.example`. Read settings through `get_settings()` only
and pass values down explicitly.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The names an open API (no API_KEYS) answers to unless API_ALLOWED_HOSTS says otherwise.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


class Settings(BaseSettings):
    # An empty variable (`CRAWLER_DOWNLOAD_DELAY=`) means unset: the default applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # --- storage -------------------------------------------------------------------------
    database_url: str = "sqlite:///data/novels.db"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # --- API -----------------------------------------------------------------------------
    # Unset: 0.0.0.0 when API_KEYS are set, else 127.0.0.1 (an open API stays on this host;
    # binding it elsewhere without keys needs API_ALLOW_ANONYMOUS=true).
    api_host: str | None = None
    api_port: int = 8000
    api_keys: str = Field(
        default="", description="comma list of keys; set: every write needs one (Bearer/X-API-Key)"
    )
    api_read_auth: bool = Field(default=False, description="reads need a key too")
    api_allow_anonymous: bool = Field(
        default=False, description="serve without keys on an address other than loopback"
    )
    api_ingest_rate: str = Field(
        default="", description="per-key limit on POST /ingest, e.g. '60/minute'; empty: none"
    )
    api_allowed_hosts: str = Field(
        default="",
        description="comma list of Host names the API answers (* any); empty: any with"
        " API_KEYS, else localhost and 127.0.0.1 (a page of another site re-pointed at this"
        " host by DNS must not reach an open API)",
    )
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1, description="larger bodies: 413")

    # --- queue ---------------------------------------------------------------------------
    queue_name: str = "ingestion"
    job_timeout: int = Field(default=3600, ge=1, description="seconds one ingestion may run")
    result_ttl: int = Field(default=86400, description="seconds RQ keeps a finished job")
    failure_ttl: int = Field(default=7 * 86400, description="seconds RQ keeps a failed job")
    job_max_attempts: int = Field(default=3, ge=1, description="runs of one job, first included")
    job_retry_backoff: float = Field(default=1.0, ge=0, description="first retry delay; doubles")
    job_retry_backoff_max: float = Field(default=300.0, ge=0)
    process_queue_batch: int = Field(default=500, ge=1)

    # --- reliability ---------------------------------------------------------------------
    reconcile_interval: int = Field(default=15, ge=1, description="seconds between passes")
    stuck_grace: int = Field(default=30, ge=1, description="seconds before a lost job is retried")
    worker_heartbeat: int = Field(default=5, ge=1, description="seconds between worker checks")
    worker_reconcile: bool = Field(
        default=True,
        description="workers run the reconciler's pass (one at a time, under a Redis lock);"
        " false: only `cli.py reconcile --loop` does",
    )
    reconcile_lock_ttl: int = Field(
        default=60, ge=5, description="seconds a dead pass holder keeps the lock at most"
    )
    job_retention: int = Field(
        default=30 * 86400,
        ge=0,
        description="seconds `cli.py purge` keeps ended job rows by default",
    )

    # --- callbacks -----------------------------------------------------------------------
    callback_secret: str = Field(
        default="", description="set: callbacks carry an HMAC-SHA256 signature of the body"
    )
    callback_attempts: int = Field(default=5, ge=1, description="deliveries of one callback")
    callback_backoff: float = Field(
        default=5.0, ge=0, description="first wait before a failed callback is sent again"
    )
    callback_timeout: float = Field(default=10.0, gt=0, description="seconds per delivery")
    callback_allowed_hosts: str = Field(
        default="",
        description="comma list of host[:port] a callback may reach although they resolve to"
        " loopback or private addresses (a receiver inside the operator's network)",
    )

    # --- dashboard -----------------------------------------------------------------------
    # Unset: 127.0.0.1 without DASHBOARD_USERNAME/PASSWORD, else 0.0.0.0.
    dashboard_host: str | None = None
    dashboard_port: int = 9181
    dashboard_username: str = ""
    dashboard_password: str = ""

    # --- crawler -------------------------------------------------------------------------
    crawler_concurrent_requests: int = 16
    # Politeness, counted over every worker on every host (through Redis). The interval
    # between two requests to one site: CRAWLER_SITE_DELAYS for that site, else
    # CRAWLER_DOWNLOAD_DELAY when set (every site), else the site's own
    # (crawler/sites/<site>.py `politeness`). Requests in flight to one site at once:
    # CRAWLER_SITE_CONCURRENCY when set, else the site's own.
    crawler_download_delay: float | None = Field(default=None, ge=0)
    crawler_site_delays: str = Field(
        default="", description="comma list of site=seconds, e.g. ao3=4,scribblehub=2"
    )
    crawler_site_concurrency: int | None = Field(default=None, ge=1)
    crawler_download_timeout: float = 30.0
    crawler_retry_times: int = Field(default=2, ge=0, description="retries of one page")
    crawler_retry_backoff: float = Field(default=0.5, ge=0, description="first page retry wait")
    crawler_user_agent: str = "novel-ingest/0.1 (+https://github.com/novel-ingest)"
    crawler_obey_robots_txt: bool = True
    crawler_robots_txt_ttl: int = Field(
        default=3600, ge=0, description="seconds a site's robots.txt is shared by all jobs"
    )
    crawler_autothrottle: bool = False
    # a Royal Road fiction page lists every chapter: ~1 KiB each, 11 MiB for 10,000
    crawler_max_page_bytes: int = 16 * 1024 * 1024
    crawler_max_chapters: int = Field(
        default=20_000, ge=1, description="a fiction listing more chapters ends in error"
    )
    crawler_max_job_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="bytes one job may download, all pages together"
    )
    crawler_site_aliases: str = Field(
        default="", description="comma list of host[:port]=site, crawled with that site's adapter"
    )

    # --- updates and scheduled refresh -------------------------------------------------
    refresh_interval: int = Field(
        default=86400, ge=0, description="seconds between refreshes of a tracked novel; 0: off"
    )
    refresh_interval_completed: int = Field(
        default=7 * 86400, ge=0, description="seconds between refreshes of a completed novel"
    )
    refresh_jitter: float = Field(
        default=0.1, ge=0, le=1, description="each interval is spread by up to this fraction"
    )
    refresh_batch: int = Field(default=500, ge=1, description="refresh jobs one pass creates")
    update_removal_limit: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="an update that would mark more than this fraction of a novel's chapters"
        " removed ends in error instead (a truncated table of contents)",
    )
    records_in_memory: int = Field(
        default=1024 * 1024,
        ge=0,
        description="characters of chapter text a job keeps in memory between parsing and"
        " saving; the rest waits in the spool",
    )
    spool_retention: int = Field(
        default=86400, ge=0, description="seconds a failed job's fetched pages are kept"
    )

    log_level: str = "INFO"
    log_format: str = Field(
        default="text", pattern="^(text|json)$", description="json: one JSON object per line"
    )
    export_cache_dir: str = Field(
        default="data/exports", description="built EPUB files, kept until the novel changes"
    )
    fault_injection: str = Field(
        default="",
        description="tests only: 'kill-after-commit' kills the API between commit and enqueue",
    )

    @field_validator("crawler_site_aliases")
    @classmethod
    def _aliases_well_formed(cls, value: str) -> str:
        parse_aliases(value)
        return value

    @field_validator("crawler_site_delays")
    @classmethod
    def _delays_well_formed(cls, value: str) -> str:
        parse_site_delays(value)
        return value

    @property
    def api_key_list(self) -> tuple[str, ...]:
        return tuple(filter(None, (k.strip() for k in self.api_keys.split(","))))

    @property
    def allowed_hosts(self) -> list[str]:
        named = [h.strip().lower() for h in self.api_allowed_hosts.split(",") if h.strip()]
        if named:
            return named
        return ["*"] if self.api_key_list else list(LOOPBACK_NAMES)

    @property
    def site_aliases(self) -> dict[str, str]:
        return parse_aliases(self.crawler_site_aliases)

    @property
    def site_delays(self) -> dict[str, float]:
        return parse_site_delays(self.crawler_site_delays)


def parse_aliases(raw: str) -> dict[str, str]:
    """`"127.0.0.1:8765=royalroad, mirror.example=royalroad"` -> {host[:port]: site}."""
    aliases: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        host, sep, site = part.partition("=")
        if not sep or not host.strip() or not site.strip():
            raise ValueError(f"CRAWLER_SITE_ALIASES entry {part!r} is not host[:port]=site")
        aliases[host.strip().lower()] = site.strip().lower()
    return aliases


def parse_site_delays(raw: str) -> dict[str, float]:
    """`"ao3=4, scribblehub=2"` -> {"ao3": 4.0, "scribblehub": 2.0}."""
    delays: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        site, sep, seconds = part.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        if not sep or not site.strip() or not value >= 0:
            raise ValueError(f"CRAWLER_SITE_DELAYS entry {part!r} is not site=seconds")
        delays[site.strip().lower()] = value
    return delays


@lru_cache
def get_settings() -> Settings:
    return Settings()
