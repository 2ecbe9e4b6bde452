"""Where a fiction crawl may connect: its own origin, over http(s), at a public address.

Two checks, one policy (`Egress`):
- before a request leaves (crawler.middlewares.OriginGuardMiddleware): the URL's scheme is
  http(s), its host:port is the fiction's origin, and a host written as an address (an IP
  literal, or a numeric form such as 2130706433, 0x7f.1, 017700000001, 127.1) is a public
  one; numeric forms are never connected to at all;
- when a host name is resolved, for the connection itself (`PublicAddressResolver`, the
  crawl's DNS_RESOLVER): every address that is not public is dropped, so a name that
  resolved to a public address once and to 127.0.0.1 now is refused now.

Hosts named in CRAWLER_SITE_ALIASES are the one exemption from the address check, for the
port the alias names (an alias without a port: the default ports, 80 and 443): an alias
never widens to another port or host.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from zope.interface import implementer

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Twisted's interfaces (IResolutionReceiver, IHostnameResolver) are zope Interfaces, which
# mypy cannot check without a plugin: they are typed Any where they are passed around.
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: IPv4-compatible (::/96,
# deprecated) and NAT64 (64:ff9b::/96, RFC 6052). Mapped (::ffff:0:0/96) and 6to4
# (2002::/16) are read by ipaddress itself.
EMBEDDING = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b::/96"))
# The last label of a host that URL parsers (WHATWG) and inet_aton read as a number:
# decimal, octal (leading 0) or hex (0x): "2130706433", "0x7f.1", "127.1".
NUMERIC_LABEL = re.compile(r"(?i)(?:0x[0-9a-f]*|[0-9]+)")
# The setting (crawler.settings) that lists the alias hosts, host[:port] each.
ALIAS_HOSTS_SETTING = "EGRESS_ALIAS_HOSTS"


def address_refusal(address: Address) -> str | None:
    """Why the crawler never connects to `address`, or None for a public address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = address_refusal(embedded)
        return None if reason is None else f"an IPv6 form of {embedded}, {reason}"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    return None if address.is_global else "not a public address"


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
        return None  # the unspecified and loopback addresses themselves, not IPv4-compatible
    if any(address in network for network in EMBEDDING):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def host_refusal(host: str) -> str | None:
    """Why a URL's host (urlsplit's `hostname`) is never connected to, judged by its form
    alone: an address that is not public, a number that is not a dotted-quad address.
    None for a public address and for a name (the resolver judges those)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        reason = address_refusal(address)
        return None if reason is None else f"{host} is {reason}"
    if ":" in host or "%" in host:
        return f"{host} is not a host name"
    if NUMERIC_LABEL.fullmatch(host.rstrip(".").rpartition(".")[2] or "-"):
        return f"{host} is a numeric host form, not an address in dotted-quad form"
    return None


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else DEFAULT_PORTS.get(scheme, 0)


def _host_port(authority: str) -> tuple[str, int | None]:
    """("host", port or None) of a CRAWLER_SITE_ALIASES key: host, host:port, [v6]:port."""
    parts = urlsplit(f"//{authority}")
    try:
        port = parts.port
    except ValueError:  # "host:abc": no port a URL can have; the host at its default ports
        port = None
    return (parts.hostname or authority).lower(), port


@dataclass(frozen=True)
class Egress:
    """The policy: which (host, port) pairs are exempt from the address check (aliases)."""

    exempt: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_aliases(cls, hosts: Iterable[str]) -> Egress:
        """From CRAWLER_SITE_ALIASES keys: "host:port" exempts that port, "host" 80 and 443."""
        pairs: set[tuple[str, int]] = set()
        for authority in hosts:
            host, port = _host_port(authority)
            pairs.update({(host, port)} if port else {(host, p) for p in DEFAULT_PORTS.values()})
        return cls(frozenset(pairs))

    def is_exempt(self, host: str, port: int) -> bool:
        return (host.lower().rstrip("."), port) in self.exempt

    def url_refusal(self, url: str, *, origin: str) -> str | None:
        """Why the crawl of the fiction at `origin` must not request `url`, or None."""
        try:
            asked, home = urlsplit(url), urlsplit(origin)
            asked_port, home_port = _port(asked.scheme, asked.port), _port(home.scheme, home.port)
        except ValueError:
            return "not a URL"
        if asked.scheme not in SCHEMES:
            return f"the scheme {asked.scheme or '(none)'!r} is not http(s)"
        host = (asked.hostname or "").rstrip(".")
        if not host or (host, asked_port) != ((home.hostname or "").rstrip("."), home_port):
            return f"not on the fiction's site ({home.scheme}://{home.netloc})"
        return None if self.is_exempt(host, asked_port) else host_refusal(host)


@implementer(IHostResolution)
class _Lookup:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        raise NotImplementedError


@implementer(IResolutionReceiver)
class _PublicOnly:
    """Passes the public addresses of one lookup on to `receiver`; keeps the others out."""

    def __init__(self, receiver: Any, resolver: PublicAddressResolver, name: str) -> None:
        self.receiver, self.resolver, self.name = receiver, resolver, name
        self.passed = 0
        self.refused: list[str] = []

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        reason = _resolved_refusal(address)
        if reason is None:
            self.passed += 1
            self.receiver.addressResolved(address)
        else:
            self.refused.append(reason)

    def resolutionComplete(self) -> None:
        refused = self.refused and not self.passed
        reason = f"{self.name} resolves only to {'; '.join(self.refused)}" if refused else None
        self.resolver.record(self.name, reason)
        self.receiver.resolutionComplete()


def _resolved_refusal(address: IAddress) -> str | None:
    if not isinstance(address, IPv4Address | IPv6Address):
        return "not an IP address"
    try:
        parsed = ipaddress.ip_address(str(address.host).partition("%")[0])
    except ValueError:
        return "not an IP address"
    reason = address_refusal(parsed)
    return None if reason is None else f"{parsed}, {reason}"


@implementer(IHostnameResolver)
class PublicAddressResolver:
    """Scrapy's DNS_RESOLVER for fiction crawls: the reactor's own resolver (getaddrinfo,
    IPv4 and IPv6), with every address that is not public dropped, unless the name is an
    alias host for the port asked. A name left without addresses fails the connection with
    Twisted's DNSLookupError; `refusal(name)` then says why (the guard middleware turns it
    into the job's RefusedURLError)."""

    def __init__(self, reactor: Any, egress: Egress) -> None:
        self.reactor, self.egress = reactor, egress
        self.original: Any = reactor.nameResolver  # an IHostnameResolver
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()  # lookups complete in the reactor; tests read from others

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> PublicAddressResolver:
        return cls(reactor, Egress.from_aliases(crawler.settings.getlist(ALIAS_HOSTS_SETTING)))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        if self.egress.is_exempt(hostName, portNumber):
            return self.original.resolveHostName(
                resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
            )
        numeric = host_refusal(hostName)
        if numeric is not None and not _is_literal(hostName):  # never looked up at all
            return self._refuse(resolutionReceiver, hostName, numeric)
        receiver = _PublicOnly(resolutionReceiver, self, hostName)
        return self.original.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )

    def _refuse(self, receiver: Any, name: str, reason: str) -> _Lookup:
        lookup = _Lookup(name)
        receiver.resolutionBegan(lookup)
        self.record(name, reason)
        receiver.resolutionComplete()
        return lookup

    def record(self, name: str, reason: str | None) -> None:
        """Keep why the last lookup of `name` gave no address (None: it gave some)."""
        with self._lock:
            if reason is not None:
                self._refused[name.lower()] = reason
            else:
                self._refused.pop(name.lower(), None)

    def refusal(self, name: str) -> str | None:
        """Why the last lookup of `name` was refused, if it was."""
        with self._lock:
            return self._refused.get(name.lower())


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def installed_refusal(name: str) -> str | None:
    """Why the reactor's resolver refused `name`, when it is a PublicAddressResolver."""
    reactor = sys.modules.get("twisted.internet.reactor")  # never installs one
    resolver = getattr(reactor, "nameResolver", None)
    return resolver.refusal(name) if isinstance(resolver, PublicAddressResolver) else None
