"""Who may call the API: API keys, and no writes from another site's pages.

The rule, for every operation but /health and the docs:

- A write (POST) from another origin (an `Origin` that is not this host, or
  `Sec-Fetch-Site: cross-site` / `same-site`) is 403, keys or none: a page elsewhere cannot
  make a visitor's browser submit or cancel jobs. A write whose Content-Type is not JSON
  (a form post, text/plain) is 415; a bodyless write sends no Content-Type.
- With API_KEYS set, a write needs one of them as `Authorization: Bearer <key>` or
  `X-API-Key: <key>`; with API_READ_AUTH=true a read does too. No key (or an Authorization
  header that is not Bearer) is 401 with `WWW-Authenticate: Bearer`; a key that is none of
  API_KEYS is 403. Keys are compared in constant time with every configured key, and are
  never logged nor stored: a caller is known by a digest of its key.
- With no API_KEYS nothing needs a key (the API binds 127.0.0.1 unless told otherwise).

The API sets no cookies and sends no CORS headers, so a browser never attaches credentials
to a request another site makes, nor lets that site read an answer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep

BEARER = HTTPBearer(
    scheme_name="BearerKey",
    description="`Authorization: Bearer <key>`, the key one of API_KEYS",
    auto_error=False,
)
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKeyHeader",
    description="`X-API-Key: <key>`, the key one of API_KEYS",
    auto_error=False,
)
CROSS_SITE_FETCH = frozenset({"cross-site", "same-site"})


class Access(str, Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a digest of its key, or its address when it sent none."""

    identity: str
    authenticated: bool


def key_matches(key: str, keys: tuple[str, ...]) -> bool:
    """True when `key` is one of `keys`; every key is compared, each in constant time."""
    given = key.encode()
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def presented_key(
    bearer: HTTPAuthorizationCredentials | None, header_key: str | None
) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header_key or None


def needs_key(access: Access, *, keys: tuple[str, ...], read_auth: bool) -> bool:
    return bool(keys) and (access is Access.WRITE or read_auth)


def _address(request: Request) -> str:
    return f"addr:{request.client.host if request.client else 'unknown'}"


def _authenticate(key: str | None, keys: tuple[str, ...]) -> Caller:
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is needed: send Authorization: Bearer <key> or X-API-Key: <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_matches(key, keys):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key is not accepted")
    return Caller(identity=f"key:{key_digest(key)}", authenticated=True)


def is_cross_site(request: Request) -> bool:
    """A browser request made by another site's page (or a sandboxed one: Origin null)."""
    if request.headers.get("sec-fetch-site", "").lower() in CROSS_SITE_FETCH:
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    own = request.headers.get("host", "").lower()
    try:
        netloc = urlsplit(origin.lower()).netloc
    except ValueError:  # "http://[": no origin anyone serves
        return True
    return origin == "null" or netloc != own


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True  # no body, or a client that sends JSON without saying so
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _caller(
    access: Access,
    request: Request,
    settings: SettingsDep,
    bearer: HTTPAuthorizationCredentials | None,
    header_key: str | None,
) -> Caller:
    keys = settings.api_key_list
    if not needs_key(access, keys=keys, read_auth=settings.api_read_auth):
        return Caller(identity=_address(request), authenticated=False)
    return _authenticate(presented_key(bearer, header_key), keys)


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
ApiKeyDep = Annotated[str | None, Security(API_KEY_HEADER)]


def read_access(
    request: Request, settings: SettingsDep, bearer: BearerDep, header_key: ApiKeyDep
) -> Caller:
    """A read: a key only when API_KEYS are set and API_READ_AUTH=true."""
    return _caller(Access.READ, request, settings, bearer, header_key)


def write_access(
    request: Request, settings: SettingsDep, bearer: BearerDep, header_key: ApiKeyDep
) -> Caller:
    """A write: never cross-site, a key when API_KEYS are set, a JSON body if any."""
    if is_cross_site(request):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "cross-site requests cannot change anything here"
        )
    caller = _caller(Access.WRITE, request, settings, bearer, header_key)
    if not is_json(request.headers.get("content-type")):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "write requests take a JSON body only (Content-Type: application/json)",
        )
    return caller


ReadAccess = Annotated[Caller, Depends(read_access)]
WriteAccess = Annotated[Caller, Depends(write_access)]
READ = Depends(read_access)
WRITE = Depends(write_access)
