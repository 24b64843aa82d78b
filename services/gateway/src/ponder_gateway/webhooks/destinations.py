"""Where webhooks may go (no server-side request forgery): an allowlist of hosts, and every
address a host resolves to must be public unless an allowed network holds it. The delivery
connects to the address checked here (never resolving the name again)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0  # a create or an attempt waits no longer for DNS
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class RefusedDestination(ValueError):
    """A URL webhooks may not go to; the message says why (for the caller)."""


class UnresolvedDestination(RefusedDestination):
    """A host name that did not resolve (maybe for now: a delivery retries it)."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed webhook URL: scheme, host (a name or an address, lower case), port, and the
    path with its query."""

    scheme: str
    host: str
    port: int
    target: str

    @property
    def host_header(self) -> str:
        """The Host header: the host, and the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL with the host replaced by `address` (the connection is pinned to it)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.target}"


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives `host` (for TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved,
    multicast or unspecified (an IPv4-mapped IPv6 address is judged as its IPv4 one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_unspecified
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
    )


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class DestinationPolicy:
    """The allowed hosts (names, `*.suffix`, addresses, CIDRs, or `*`) and the non-public
    networks that may be reached anyway."""

    def __init__(
        self,
        *,
        hosts: Sequence[str],
        networks: Sequence[str],
        resolver: Resolver | None = None,
        resolve_seconds: float = RESOLVE_SECONDS,
    ) -> None:
        self._resolve_seconds = resolve_seconds
        self._any = "*" in hosts
        self._names: set[str] = set()
        self._suffixes: list[str] = []
        self._host_networks: list[Network] = []
        for given in hosts:
            entry = given.strip().lower().rstrip(".")
            if entry == "*":
                continue
            if entry.startswith("*."):
                self._suffixes.append(entry[1:])
            elif (network := _network(entry, strict=False)) is not None:
                self._host_networks.append(network)
            elif entry and all(part for part in entry.split(".")) and "/" not in entry:
                self._names.add(entry)
            else:
                raise ValueError(f"{entry!r} is not a host name, *.suffix, address or CIDR")
        self._networks: list[Network] = []
        for entry in networks:
            network = _network(entry.strip(), strict=True)
            if network is None:
                raise ValueError(f"{entry!r} is not a CIDR network such as 10.0.0.0/8")
            self._networks.append(network)
        self._resolve = resolver or system_resolver

    @property
    def enabled(self) -> bool:
        """Whether any destination is allowed at all."""
        return self._any or bool(self._names or self._suffixes or self._host_networks)

    def parse(self, url: str) -> Destination:
        """The URL's parts when its form is acceptable and its host name allowed (addresses
        are checked by `addresses`); RefusedDestination otherwise."""
        if not self.enabled:
            raise RefusedDestination("webhooks are turned off on this gateway")
        if len(url) > MAX_URL_LENGTH:
            raise RefusedDestination(f"must be at most {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RefusedDestination(f"is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise RefusedDestination("must be an http or https URL")
        if parts.username is not None or parts.password is not None:
            raise RefusedDestination("must not carry user info (user:password@)")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise RefusedDestination("must name a host")
        if any(ch.isspace() for ch in url):
            raise RefusedDestination("must not contain white space")
        destination = Destination(
            parts.scheme,
            host,
            port or (443 if parts.scheme == "https" else 80),
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        )
        literal = _address(host)
        if not (self._any or self._name_allowed(host) or literal is not None):
            raise RefusedDestination(f"host {host} is not an allowed webhook destination")
        return destination

    def _name_allowed(self, host: str) -> bool:
        return host in self._names or any(host.endswith(suffix) for suffix in self._suffixes)

    async def addresses(self, destination: Destination) -> list[IPAddress]:
        """The addresses to connect to, all checked; RefusedDestination when any is not
        allowed (UnresolvedDestination when the name does not resolve)."""
        literal = _address(destination.host)
        if literal is not None:
            found = [literal]
        else:
            try:
                async with asyncio.timeout(self._resolve_seconds):
                    texts = await self._resolve(destination.host, destination.port)
            except TimeoutError:
                raise UnresolvedDestination(
                    f"host {destination.host} did not resolve within {self._resolve_seconds:g} s"
                ) from None
            except OSError as exc:
                raise UnresolvedDestination(
                    f"host {destination.host} does not resolve ({exc.strerror or exc})"
                ) from None
            found = [a for a in (_address(t) for t in texts) if a is not None]
            if not found:
                raise UnresolvedDestination(f"host {destination.host} does not resolve")
        by_name = self._any or self._name_allowed(destination.host)
        for address in found:
            if not (by_name or any(address in n for n in self._host_networks)):
                raise RefusedDestination(
                    f"address {address} of {destination.host} is not an allowed webhook destination"
                )
            if not (is_public(address) or any(address in n for n in self._networks)):
                raise RefusedDestination(
                    f"{destination.host} resolves to {address}, a non-public address "
                    "(loopback, private, link-local, multicast or unspecified) that is not "
                    "allowed"
                )
        return found


def _network(text: str, *, strict: bool) -> Network | None:
    """A CIDR (or a single address when not strict), else None."""
    if not strict and "/" not in text and _address(text) is None:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
