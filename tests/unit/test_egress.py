"""The egress policy (crawler.egress): which URLs and addresses a fiction crawl may reach.

Addresses by class, IPv6 and the forms that map to IPv4, numeric host forms, the alias
exemption (for its own port only); the resolver with real lookups of "localhost" (in
/etc/hosts), and a real Scrapy crawl whose host resolves to loopback: it never connects.
The reactor runs once per process, so those two run in a subprocess each.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from crawler.egress import Egress, address_refusal, host_refusal
from tests.conftest import InternalService
from tests.utils.services import REDIS_URL, ROOT


@pytest.fixture
def listener() -> Iterator[InternalService]:
    service = InternalService()
    yield service
    service.close()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("192.0.2.1", "a private address"),  # documentation
        ("0.0.0.0", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "a private address"),  # reserved (ipaddress counts it private too)
        ("255.255.255.255", "a private address"),
        ("::1", "a loopback address"),
        ("::", "the unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fd00:ec2::254", "a private address"),  # the IPv6 metadata address
        ("fc00::1", "a private address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a private address"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, reason: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1, a loopback address"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "169.254.169.254, a link-local address"),
        ("::ffff:10.1.2.3", "10.1.2.3, a private address"),
        ("2002:7f00:1::1", "127.0.0.1, a loopback address"),  # 6to4
        ("2002:a9fe:a9fe::", "169.254.169.254, a link-local address"),
        ("::127.0.0.1", "127.0.0.1, a loopback address"),  # IPv4-compatible (deprecated)
        ("64:ff9b::a00:1", "10.0.0.1, a private address"),  # NAT64
    ],
)
def test_ipv6_forms_of_an_inner_ipv4_address_are_judged_by_it(address: str, inner: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason == f"an IPv6 form of {inner}"


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f.1", "017700000001", "127.1", "0x7f000001", "0177.0.0.1", "1.2.3.4.5"],
)
def test_numeric_host_forms_are_refused_by_their_form(host: str) -> None:
    assert (
        host_refusal(host) == f"{host} is a numeric host form, not an address in dotted-quad form"
    )


def test_hosts_are_judged_by_form_and_names_are_left_to_the_resolver() -> None:
    assert host_refusal("127.0.0.1") == "127.0.0.1 is a loopback address"
    assert host_refusal("::ffff:127.0.0.1") == (
        "::ffff:127.0.0.1 is an IPv6 form of 127.0.0.1, a loopback address"
    )
    assert host_refusal("fe80::1%eth0") == "fe80::1%eth0 is a link-local address"
    assert host_refusal("8.8.8.8") is None
    assert host_refusal("www.royalroad.com") is None
    assert host_refusal("1password.com") is None  # digits, but a name


ORIGIN = "https://www.royalroad.com/fiction/12345"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://www.royalroad.com/fiction/12345/x/chapter/1/y", None),
        ("http://www.royalroad.com:443/robots.txt", None),  # the same host:port
        ("https://WWW.RoyalRoad.com./fiction/1", None),
        (
            "https://royalroad.com/fiction/1",
            "not on the fiction's site (https://www.royalroad.com)",
        ),
        (
            "https://www.royalroad.com:8443/",
            "not on the fiction's site (https://www.royalroad.com)",
        ),
        ("http://www.royalroad.com/", "not on the fiction's site (https://www.royalroad.com)"),
        ("file:///etc/passwd", "the scheme 'file' is not http(s)"),
        ("ftp://www.royalroad.com/x", "the scheme 'ftp' is not http(s)"),
        ("data:text/html,<h1>x</h1>", "the scheme 'data' is not http(s)"),
        ("javascript:alert(1)", "the scheme 'javascript' is not http(s)"),
        ("http://[::1/", "not a URL"),
    ],
)
def test_a_request_must_be_on_the_fiction_origin_over_http(url: str, reason: str | None) -> None:
    assert Egress().url_refusal(url, origin=ORIGIN) == reason


def test_an_origin_at_an_address_is_refused_unless_it_is_an_alias() -> None:
    origin = "http://127.0.0.1:8765/fiction/1"
    assert Egress().url_refusal(origin, origin=origin) == "127.0.0.1 is a loopback address"
    aliased = Egress.from_aliases(["127.0.0.1:8765"])
    assert aliased.url_refusal(origin, origin=origin) is None
    numeric = "http://2130706433:8765/fiction/1"
    assert "numeric host form" in str(aliased.url_refusal(numeric, origin=numeric))


def test_an_alias_never_widens_to_another_port() -> None:
    aliased = Egress.from_aliases(["127.0.0.1:8765", "mirror.internal", "[::1]:9000"])
    assert aliased.is_exempt("127.0.0.1", 8765)
    assert not aliased.is_exempt("127.0.0.1", 8766)
    assert not aliased.is_exempt("127.0.0.2", 8765)
    assert aliased.is_exempt("mirror.internal", 80) and aliased.is_exempt("mirror.internal", 443)
    assert not aliased.is_exempt("mirror.internal", 6379)  # no port named: the default ones
    assert aliased.is_exempt("::1", 9000) and not aliased.is_exempt("::1", 9001)
    other_port = "http://127.0.0.1:6379/fiction/1"
    assert aliased.url_refusal(other_port, origin=other_port) == "127.0.0.1 is a loopback address"


# --- the resolver, with the system's own lookups --------------------------------------

RESOLVE = """
import json, sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import defer, reactor
from crawler.egress import Egress, PublicAddressResolver

class Receiver:
    def __init__(self):
        self.addresses, self.done = [], defer.Deferred()
    def resolutionBegan(self, resolution): pass
    def addressResolved(self, address): self.addresses.append(address.host)
    def resolutionComplete(self): self.done.callback(None)

async def main(cases):
    found = []
    for name, port, aliases in cases:
        resolver = PublicAddressResolver(reactor, Egress.from_aliases(aliases))
        receiver = Receiver()
        resolver.resolveHostName(receiver, name, port)
        await receiver.done
        found.append({"addresses": receiver.addresses, "refusal": resolver.refusal(name)})
    return found

def run():
    d = defer.ensureDeferred(main(json.loads(sys.argv[1])))
    d.addCallback(lambda found: print(json.dumps(found)))
    d.addErrback(lambda failure: print(failure.getTraceback(), file=sys.stderr))
    d.addBoth(lambda _: reactor.stop())

reactor.callWhenRunning(run)
reactor.run()
"""


def _resolve(*cases: tuple[str, int, list[str]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(cases)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    return list(json.loads(done.stdout))


def test_the_resolver_drops_loopback_addresses_unless_the_name_is_an_alias_for_that_port() -> None:
    plain, aliased, other_port, numeric, literal = _resolve(
        ("localhost", 80, []),
        ("localhost", 80, ["localhost"]),
        ("localhost", 8080, ["localhost"]),  # an alias without a port: 80 and 443 only
        ("127.1", 80, []),
        ("127.0.0.1", 8765, ["127.0.0.1:8765"]),
    )
    assert plain["addresses"] == []
    assert plain["refusal"].startswith("localhost resolves only to ")
    assert "127.0.0.1, a loopback address" in plain["refusal"]
    assert "127.0.0.1" in aliased["addresses"] and aliased["refusal"] is None
    assert other_port["addresses"] == [] and other_port["refusal"] is not None
    assert numeric == {
        "addresses": [],
        "refusal": "127.1 is a numeric host form, not an address in dotted-quad form",
    }
    assert literal == {"addresses": ["127.0.0.1"], "refusal": None}


# --- a real crawl whose host resolves to loopback ------------------------------------

CRAWL = """
import json, sys
from config import Settings
from crawler import sites
from crawler.crawl import crawl
from crawler.spiders.fiction import PageList

class Quiet:
    def chapters_found(self, count): pass
    def page_fetched(self, fetched): pass

url, aliases, redis_url = sys.argv[1:]
settings = Settings(
    crawler_site_aliases=aliases, crawler_download_delay=0, crawler_retry_times=1,
    crawler_retry_backoff=0, crawler_download_timeout=5, redis_url=redis_url,
)
adapter, ref = sites.resolve(url, aliases={url.split("/")[2]: "royalroad"})
result = crawl(ref, adapter, settings=settings, listener=Quiet(), sink=PageList(), timeout=30)
failure = result.failure
print(json.dumps({"kind": type(failure).__name__, "message": str(failure)}))
"""


def _crawl(url: str, aliases: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", CRAWL, url, aliases, REDIS_URL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_crawl_of_a_name_that_resolves_to_loopback_never_connects(
    listener: InternalService,
) -> None:
    url = f"http://localhost:{listener.port}/fiction/1"
    for aliases in ("", f"localhost:{listener.port + 1}=royalroad", "localhost=royalroad"):
        failure = _crawl(url, aliases)
        assert failure["kind"] == "RefusedURLError", (aliases, failure)
        assert failure["message"].startswith(f"refused {url}: localhost resolves only to "), failure
        assert "127.0.0.1, a loopback address" in failure["message"], failure
    assert listener.connections == 0


def test_a_crawl_of_an_alias_host_connects(listener: InternalService) -> None:
    url = f"http://localhost:{listener.port}/fiction/1"
    failure = _crawl(url, f"localhost:{listener.port}=royalroad")
    assert failure["kind"] == "RetryableFailure", failure  # it closes every connection
    assert listener.connections >= 1
