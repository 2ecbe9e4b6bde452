"""Where `python main.py` listens, and whether it may: an API without keys stays on this
host unless the operator says otherwise."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from errors import IngestError

LOOPBACK = "127.0.0.1"
EVERYWHERE = "0.0.0.0"


class UnsafeBindError(IngestError):
    """Raised when the API would serve without keys on an address other than loopback."""


@dataclass(frozen=True)
class Bind:
    host: str
    open: bool  # no API_KEYS: whoever reaches `host` may submit and cancel jobs


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or "localhost"; any other name may resolve anywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def choose_bind(*, api_host: str | None, has_keys: bool, allow_anonymous: bool) -> Bind:
    """API_HOST if set, else 0.0.0.0 with keys, else 127.0.0.1; refuse an open API beyond
    loopback unless API_ALLOW_ANONYMOUS=true."""
    host = api_host or (EVERYWHERE if has_keys else LOOPBACK)
    if not has_keys and not allow_anonymous and not is_loopback(host):
        raise UnsafeBindError(
            f"refusing to serve on {host} without API_KEYS: set API_KEYS, or"
            " API_ALLOW_ANONYMOUS=true to serve it open"
        )
    return Bind(host=host, open=not has_keys)
