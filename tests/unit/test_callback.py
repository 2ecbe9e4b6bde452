"""callback.py without a database: URL rules, the address check, body, headers, signature."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from datetime import UTC, datetime

import pytest

import callback
from config import Settings
from crawler.egress import Egress
from errors import InvalidURLError, RefusedURLError
from models import IngestionJob

NOBODY = Egress()


def _job(**values: object) -> IngestionJob:
    defaults: dict[str, object] = {
        "id": 7,
        "source_url": "https://www.royalroad.com/fiction/12345",
        "site": "royalroad",
        "site_novel_id": "12345",
        "status": "done",
        "attempts": 1,
        "chapters_found": 3,
        "chapters_fetched": 3,
        "chapters_saved": 3,
        "chapters_locked": 0,
        "novel_id": 4,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "finished_at": datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC),
    }
    return IngestionJob(**{**defaults, **values})


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hook", "http://hooks.example.org:8080/a?token=x", "  https://e.com/ "],
)
def test_an_http_callback_url_is_accepted_as_sent(url: str) -> None:
    assert callback.check_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hook", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("https:///no-host", "not an http(s) URL"),
        ("http://example.com:99999/", "not a valid URL"),
        ("https://example.com/" + "a" * 2048, "at most 2048 characters"),
    ],
)
def test_a_callback_url_outside_the_rules_is_refused(url: str, says: str) -> None:
    with pytest.raises(InvalidURLError, match=says.replace("(", r"\(").replace(")", r"\)")):
        callback.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a\r\nX: y",
        "http://example.com/a\nX-Injected: 1",
        "http://example.com/a b",
        "http://exa mple.com/",
        "http://example.com/\tx",
        "http://example.com/\x00",
        "http://example.com/\x7f",
        "http://ex\u00e4mple-.com/",  # urlsplit takes it, httpx does not (IDNA)
    ],
)
def test_a_callback_url_httpx_would_not_send_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        callback.check_url(url)
    assert str(caught.value) == "callback_url is not a valid URL"
    assert "example" not in str(caught.value) and "mple" not in str(caught.value)


def test_a_stored_url_httpx_refuses_is_a_refusal_at_delivery_not_a_crash() -> None:
    """A row stored before check_url refused it: RefusedURLError (failed, not retried)."""
    settings = Settings(callback_allowed_hosts="127.0.0.1:9")
    body = callback.payload(_job(), attempt=1)
    with pytest.raises(RefusedURLError) as caught:
        callback._send("http://127.0.0.1:9/a\r\nX: y", body, settings=settings)
    assert caught.value.reason == "not a valid URL"
    assert caught.value.__suppress_context__


def test_a_callback_url_with_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(InvalidURLError) as caught:
        callback.check_url("https://hook-user:s3cret-pw@example.com/hook")
    assert "user name or password" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) and "hook-user" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "an IPv6 form of 127.0.0.1"),
        ("http://2130706433/hook", "numeric host form"),
        ("http://0x7f.1/hook", "numeric host form"),
    ],
)
def test_an_address_inside_the_network_is_refused_before_connecting(url: str, reason: str) -> None:
    with pytest.raises(RefusedURLError) as caught:
        callback.target(url, egress=NOBODY)
    assert reason in caught.value.reason


def test_a_name_that_resolves_to_loopback_only_is_refused() -> None:
    with pytest.raises(RefusedURLError) as caught:
        callback.target("http://localhost:8123/hook", egress=NOBODY)
    assert caught.value.reason.startswith("localhost resolves only to ")
    assert "a loopback address" in caught.value.reason


def test_an_allowed_host_is_reached_at_the_port_it_names_only() -> None:
    allowed = callback.allowed_hosts(Settings(callback_allowed_hosts=" 127.0.0.1:8123 , hooks.lan"))
    checked = callback.target("http://127.0.0.1:8123/hook", egress=allowed)
    assert checked.address == ipaddress.ip_address("127.0.0.1")
    with pytest.raises(RefusedURLError):
        callback.target("http://127.0.0.1:8124/hook", egress=allowed)
    assert allowed.is_exempt("hooks.lan", 443) and not allowed.is_exempt("hooks.lan", 8443)


def test_a_public_address_is_connected_to_as_checked_with_the_host_kept() -> None:
    checked = callback.target("https://93.184.216.34:8443/hook?x=1", egress=NOBODY)
    assert str(checked.pinned_url()) == "https://93.184.216.34:8443/hook?x=1"
    v6 = callback.Target(
        url="https://hooks.example.com/h",
        host="hooks.example.com",
        address=ipaddress.ip_address("2606:2800::1"),
    )
    assert str(v6.pinned_url()) == "https://[2606:2800::1]/h"


def test_the_signature_is_github_style_hmac_sha256_of_the_body() -> None:
    # GitHub's documented test vector for X-Hub-Signature-256
    assert callback.signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_the_body_tells_the_outcome_and_the_delivery() -> None:
    job = _job(changes={"new": 3, "updated": 0, "removed": 0, "unchanged": 0})
    body = callback.payload(job, attempt=2)
    assert {k: body[k] for k in ("event", "job_id", "status", "novel_id", "attempts")} == {
        "event": "job.done",
        "job_id": 7,
        "status": "done",
        "novel_id": 4,
        "attempts": 1,
    }
    assert body["chapters_saved"] == 3 and body["finished_at"] == "2026-01-02T03:05:00+00:00"
    assert body["delivery_attempt"] == 2 and body["error_message"] is None
    assert json.loads(callback.encode(body)) == body


def test_the_delivery_id_is_stable_per_outcome_and_differs_between_jobs() -> None:
    first = callback.delivery_id(_job())
    job = _job()
    assert first == callback.delivery_id(job)  # every attempt of this outcome's delivery
    assert first == callback.payload(job, attempt=1)["delivery_id"]
    assert first == callback.payload(job, attempt=3)["delivery_id"]
    assert first != callback.delivery_id(_job(id=8))
    assert first != callback.delivery_id(_job(created_at=datetime(2027, 1, 1, tzinfo=UTC)))


def test_a_retried_jobs_new_end_has_a_new_delivery_id() -> None:
    """A receiver de-duplicating on X-Delivery-Id must not drop the retried job's outcome."""
    first = _job(status="error", error_message="HTTP 503")
    again = _job(status="done", finished_at=datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC))
    assert callback.delivery_id(first) != callback.delivery_id(again)
    # the end time, not the status, tells the outcomes apart
    assert callback.delivery_id(first) != callback.delivery_id(
        _job(status="error", finished_at=again.finished_at)
    )


def test_headers_sign_the_exact_body_only_when_a_secret_is_set() -> None:
    job = _job(status="error", error_message="gave up after 3 attempts: HTTP 503")
    body = callback.payload(job, attempt=1)
    raw = callback.encode(body)
    checked = callback.Target(
        url="https://hooks.example.com:8443/h",
        host="hooks.example.com",
        address=ipaddress.ip_address("93.184.216.34"),
    )
    plain = callback.headers(body, raw, target=checked, settings=Settings(callback_secret=""))
    assert plain["X-Novel-Ingest-Event"] == "job.error"
    assert plain["Host"] == "hooks.example.com:8443"
    assert plain["X-Delivery-Id"] == callback.delivery_id(job)
    assert "X-Signature-256" not in plain
    signed = callback.headers(body, raw, target=checked, settings=Settings(callback_secret="k"))
    expected = hmac.new(b"k", raw, hashlib.sha256).hexdigest()
    assert signed["X-Signature-256"] == f"sha256={expected}"
