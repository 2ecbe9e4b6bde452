"""Scheduled refresh: when each stored novel is due to be read from its site again."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from config import Settings

COMPLETED = "completed"


def next_refresh_at(
    status: str | None, *, settings: Settings, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When a novel checked at `now` is due again: REFRESH_INTERVAL, or
    REFRESH_INTERVAL_COMPLETED for a completed one, spread by up to REFRESH_JITTER of
    itself either way so that novels ingested together do not all come due together.
    None when that interval is 0 (scheduled refresh off)."""
    interval = (
        settings.refresh_interval_completed if status == COMPLETED else settings.refresh_interval
    )
    if interval <= 0:
        return None
    spread = (rng or random).uniform(-1.0, 1.0) * settings.refresh_jitter
    return now + timedelta(seconds=interval * (1.0 + spread))
