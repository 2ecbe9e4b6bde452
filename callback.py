"""Callbacks: POST a job's outcome to its `callback_url` once the job ends.

When: `notify(job_id)` right after a job ends (the worker, a cancel), and `pass_due()` in
every reconciler pass for any ended job whose callback is still pending with no delivery
queued (a crash, a Redis outage): a callback is never lost. Deliveries run as RQ jobs
(`deliver`, queued by ingestion_queue.enqueue_callback on `<QUEUE_NAME>-callbacks`),
retried by RQ with backoff (CALLBACK_BACKOFF doubling); the row counts the attempts and
gives up after CALLBACK_ATTEMPTS. Each attempt is claimed first (a compare-and-set of the
attempt count, on the outcome seen): two copies of a delivery never both POST, and an
attempt settles only the outcome it told (not a retried job's new end).

Where: the URL rules of ingest URLs (http(s), no user:password@, at most 2048
characters) when it is submitted, and at each delivery the crawler's address policy
(crawler/egress.py): the host is resolved and a loopback, private, link-local or
metadata address is refused (the callback fails at once, never retried) unless its
host[:port] is in CALLBACK_ALLOWED_HOSTS. The request goes to the address checked (no
second lookup), follows no redirect and reads no answer body.

What: a JSON body (`payload`), `X-Novel-Ingest-Event: job.done | job.error`, an
`X-Delivery-Id` that stays the same for every attempt of one outcome's callback and is new
for a new outcome of the job (a retried job's end: receivers de-duplicate on it), and
with CALLBACK_SECRET set `X-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the exact
body bytes under that secret. The body holds `sent_at` (and the attempt number), so the
signature covers the time it was sent: a receiver may refuse an old body replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

import ingestion_queue
from config import Settings, get_settings
from crawler.egress import DEFAULT_PORTS, Address, Egress, address_refusal, host_refusal
from db import keyset_batches, session_scope
from errors import (
    InvalidURLError,
    QueueUnavailableError,
    RefusedURLError,
    RetryableFailure,
    safe_message,
)
from models import TERMINAL, IngestionJob, JobStatus
from models.base import utcnow
from models.ingestion_job import CallbackStatus

log = logging.getLogger(__name__)

URL_LIMIT = 2048  # characters of a callback_url (the column's size)
EVENT_HEADER = "X-Novel-Ingest-Event"
SIGNATURE_HEADER = "X-Signature-256"
DELIVERY_ID_HEADER = "X-Delivery-Id"
ATTEMPT_HEADER = "X-Delivery-Attempt"
# X-Delivery-Id is a UUID derived from the job's outcome (id, creation and end time): the
# same for every attempt of that outcome's delivery, new for a retried job's new end, and
# not repeated by another job, even in a database started afresh.
DELIVERY_NAMESPACE = uuid.UUID("6f1d2a4e-9c1b-4d7e-8a51-3b0c2f9e7d10")


def check_url(url: str) -> str:
    """`url` as stored, or InvalidURLError saying what is wrong without repeating a URL
    that holds credentials: the rules of ingest URLs (crawler.sites.resolve)."""
    url = url.strip()
    if len(url) > URL_LIMIT:
        raise InvalidURLError(f"a callback_url is at most {URL_LIMIT} characters")
    invalid = InvalidURLError("callback_url is not a valid URL")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise invalid  # a space or control character: a header injected, a request split
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port out of range or not a number
        httpx.URL(url)  # as it is sent: deliver must not meet a URL httpx refuses
    except (ValueError, httpx.InvalidURL):
        raise invalid from None
    if "@" in parts.netloc:
        raise InvalidURLError(
            "a callback_url with a user name or password (user:password@host) is refused:"
            " authenticate the callback with CALLBACK_SECRET's signature instead"
        )
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidURLError("callback_url is not an http(s) URL")
    return url


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: the URL asked, and the address checked for it."""

    url: str
    host: str
    address: Address

    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address: no second lookup."""
        return httpx.URL(self.url).copy_with(host=str(self.address))


def allowed_hosts(settings: Settings) -> Egress:
    """CALLBACK_ALLOWED_HOSTS as a policy: host:port exempts that port, host 80 and 443."""
    hosts = [h.strip() for h in settings.callback_allowed_hosts.split(",") if h.strip()]
    return Egress.from_aliases(hosts)


def target(url: str, *, egress: Egress) -> Target:
    """Resolve `url`'s host and check every address; RefusedURLError when none may be
    reached, RetryableFailure when the name does not resolve (now)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    exempt = egress.is_exempt(host, port)
    reason = None if exempt else host_refusal(host)
    if reason is not None:
        raise RefusedURLError(url, reason)
    addresses = _resolve(host, port)
    refused = [] if exempt else [(a, address_refusal(a)) for a in addresses]
    usable = addresses if exempt else [a for a, why in refused if why is None]
    if not usable:
        why = "; ".join(f"{a}, {reason}" for a, reason in refused)
        raise RefusedURLError(url, f"{host} resolves only to {why}")
    return Target(url=url, host=host, address=usable[0])


def _resolve(host: str, port: int) -> list[Address]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise RetryableFailure(f"{host} could not be resolved ({error})") from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def event_name(status: str) -> str:
    return f"job.{status}"


def delivery_id(job: IngestionJob) -> str:
    """The same for every attempt of one outcome; a retried job's new end has a new one."""
    name = f"{job.id}:{job.created_at.isoformat()}:{_iso(job.finished_at) or ''}"
    return str(uuid.uuid5(DELIVERY_NAMESPACE, name))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def payload(job: IngestionJob, *, attempt: int) -> dict[str, Any]:
    """The body of a job's callback: its outcome, as GET /jobs/{id} tells it."""
    return {
        "event": event_name(job.status),
        "job_id": job.id,
        "status": job.status,
        "source_url": job.source_url,
        "site": job.site,
        "novel_id": job.novel_id,
        "error_message": job.error_message,
        "attempts": job.attempts,
        "chapters_found": job.chapters_found,
        "chapters_fetched": job.chapters_fetched,
        "chapters_saved": job.chapters_saved,
        "chapters_locked": job.chapters_locked,
        "changes": job.changes,
        "finished_at": _iso(job.finished_at),
        "delivery_id": delivery_id(job),
        "delivery_attempt": attempt,
        "sent_at": _iso(utcnow()),
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body under secret>`, the X-Signature-256 value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(
    body: dict[str, Any], raw: bytes, *, target: Target, settings: Settings
) -> dict[str, str]:
    sent = {
        "Content-Type": "application/json",
        "User-Agent": settings.crawler_user_agent,
        "Host": urlsplit(target.url).netloc,
        EVENT_HEADER: str(body["event"]),
        DELIVERY_ID_HEADER: str(body["delivery_id"]),
        ATTEMPT_HEADER: str(body["delivery_attempt"]),
    }
    if settings.callback_secret:
        sent[SIGNATURE_HEADER] = signature(settings.callback_secret, raw)
    return sent


def post(target: Target, raw: bytes, sent: dict[str, str], *, timeout: float) -> int:
    """POST `raw` to the checked address; the answer's status (its body is never read)."""
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        request = client.build_request(
            "POST",
            target.pinned_url(),
            content=raw,
            headers=sent,
            extensions={"sni_hostname": target.host},  # TLS: the name, not the address
        )
        response = client.send(request, stream=True)
        response.close()
        return response.status_code


def describe(error: httpx.HTTPError, timeout: float) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(error, httpx.ConnectError):
        return f"could not connect: {safe_message(str(error), limit=200)}"
    return safe_message(f"{type(error).__name__}: {error}", limit=200)


def deliver(job_id: int) -> str:
    """The RQ job function: one delivery of a job's callback. Returns what became of it;
    raises RetryableFailure so that RQ sends it again later."""
    settings = get_settings()
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        if job is None or not _due(job):
            return "skipped"
        done, seen = job.callback_attempts, job.finished_at
        if done >= settings.callback_attempts:
            given_up = _gave_up(done, job.callback_error)
            settled = _settle(job_id, CallbackStatus.FAILED, given_up, attempt=done, seen=seen)
            return "failed" if settled else SUPERSEDED
        if not _claim(session, job_id, done, seen):
            return "skipped"  # another copy of this delivery has it, or the job moved on
        attempt = done + 1
        url, body = str(job.callback_url), payload(job, attempt=attempt)
    fence = Fence(job_id, attempt, seen)
    try:
        status = _send(url, body, settings=settings)
    except RefusedURLError as error:
        # the reason, not the URL: its query string may hold the receiver's token
        refused = f"callback_url refused: {error.reason}"
        return "refused" if fence.settle(CallbackStatus.FAILED, refused) else SUPERSEDED
    except RetryableFailure as error:
        reason = str(error)
    else:
        if 200 <= status < 300:
            return "delivered" if fence.settle(CallbackStatus.DELIVERED, None) else SUPERSEDED
        reason = f"the receiver answered HTTP {status}"
    return _failed(fence, reason, settings=settings)


SUPERSEDED = "superseded"  # what deliver returns when the attempt's outcome is not the row's


@dataclass(frozen=True)
class Fence:
    """One claimed attempt: it settles the row only while the row is still that attempt of
    that outcome (a reopen resets the attempts and ends the job again at another time)."""

    job_id: int
    attempt: int
    seen: datetime | None  # the row's finished_at when the attempt was claimed

    def settle(self, status: CallbackStatus, error: str | None) -> bool:
        return _settle(self.job_id, status, error, attempt=self.attempt, seen=self.seen)


def _claim(session: Session, job_id: int, done: int, seen: datetime | None) -> bool:
    """Attempt `done + 1` of the outcome that ended at `seen`, if no one took it first."""
    claimed = session.execute(
        update(IngestionJob)
        .where(
            IngestionJob.id == job_id,
            IngestionJob.callback_status == CallbackStatus.PENDING.value,
            IngestionJob.callback_attempts == done,
            IngestionJob.status.in_([s.value for s in TERMINAL]),
            IngestionJob.finished_at == seen,
        )
        .values(callback_attempts=done + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _send(url: str, body: dict[str, Any], *, settings: Settings) -> int:
    checked = target(url, egress=allowed_hosts(settings))
    raw = encode(body)
    sent = headers(body, raw, target=checked, settings=settings)
    try:
        return post(checked, raw, sent, timeout=settings.callback_timeout)
    except httpx.InvalidURL:
        # a row stored before check_url refused such URLs; never retried, never echoed
        raise RefusedURLError(url, "not a valid URL") from None
    except httpx.HTTPError as error:
        raise RetryableFailure(describe(error, settings.callback_timeout)) from None


def _failed(fence: Fence, reason: str, *, settings: Settings) -> str:
    """Keep the reason; the last attempt marks the callback failed. Raises either way, so
    RQ retries (and, once its retries are spent, shows the delivery as failed), unless
    the row has moved on from this attempt (another outcome's delivery has it)."""
    job_id, attempt = fence.job_id, fence.attempt
    last = attempt >= settings.callback_attempts
    status = CallbackStatus.FAILED if last else CallbackStatus.PENDING
    if not fence.settle(status, _gave_up(attempt, reason) if last else safe_message(reason)):
        return SUPERSEDED
    log.warning("callback of job %s, attempt %s: %s", job_id, attempt, reason)
    raise RetryableFailure(f"callback of job {job_id} not delivered: {reason}")


def _gave_up(attempts: int, reason: str | None) -> str:
    return safe_message(f"gave up after {attempts} attempts: {reason or 'no reason recorded'}")


def _due(job: IngestionJob) -> bool:
    return JobStatus(job.status) in TERMINAL and job.callback_status == CallbackStatus.PENDING


def _settle(
    job_id: int, status: CallbackStatus, error: str | None, *, attempt: int, seen: datetime | None
) -> bool:
    """Write where the delivery stands, unless it was settled already or the row is no
    longer attempt `attempt` of the outcome that ended at `seen`; whether it was written."""
    values: dict[str, Any] = {"callback_status": status.value}
    if error is not None or status is CallbackStatus.DELIVERED:
        values["callback_error"] = error
    if status is CallbackStatus.DELIVERED:
        values["callback_delivered_at"] = utcnow()
    with session_scope() as session:
        settled = session.execute(
            update(IngestionJob)
            .where(
                IngestionJob.id == job_id,
                IngestionJob.callback_status == CallbackStatus.PENDING.value,
                IngestionJob.callback_attempts == attempt,
                IngestionJob.finished_at == seen,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(settled.rowcount == 1)  # type: ignore[attr-defined]


def notify(job_id: int, settings: Settings) -> bool:
    """Queue the delivery of a job's callback if the job has ended and its callback is
    pending. True if queued now; a Redis outage is logged (the reconciler's pass queues
    it later)."""
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        if job is None or not _due(job):
            return False
    try:
        return ingestion_queue.enqueue_callback(job_id, settings=settings)
    except QueueUnavailableError as error:
        log.warning("callback of job %s queued when Redis is back: %s", job_id, error)
        return False


def pending_batches(batch: int) -> Iterator[list[int]]:
    """Ids of ended jobs whose callback is pending, in batches (keyset pagination)."""
    due = select(IngestionJob.id).where(
        IngestionJob.callback_status == CallbackStatus.PENDING.value,
        IngestionJob.status.in_([s.value for s in TERMINAL]),
    )
    for rows in keyset_batches(due, IngestionJob.id, batch):
        yield [job_id for (job_id,) in rows]


def pass_due(settings: Settings) -> int:
    """Queue every pending callback of an ended job that has no delivery waiting or
    running (a worker that died before notifying, a Redis flushed); how many were queued."""
    queued = 0
    for ids in pending_batches(settings.process_queue_batch):
        queued += sum(ingestion_queue.enqueue_callback(i, settings=settings) for i in ids)
    return queued
