"""Which client an attempt comes from, as abuse limits and lockouts count it.

A single address says little: IPv6 hands every subscriber a /64 to rotate through for
free, and an IPv4 address rarely stands alone in its /24. Limits and lockouts are kept
per network (an IPv4 /24, an IPv6 /64). Behind the platform's own reverse proxies the
peer is the proxy; the client is the address the nearest untrusted hop gave.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPV4_PREFIX = 24
IPV6_PREFIX = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Networks written as CIDRs or addresses, separated by commas or spaces."""
    return tuple(
        ipaddress.ip_network(part, strict=False) for part in text.replace(",", " ").split()
    )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(text: str, proxies: Sequence[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in proxy for proxy in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address: the peer, unless the peer is one of our trusted proxies; then
    the rightmost `X-Forwarded-For` hop that is not one (hops to its left are whatever the
    client chose to write, so they are never believed)."""
    if not proxies or not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop if _address(hop) is not None else peer
    return hops[0] if hops else peer


def client_network(address: str) -> str:
    """The network limits and lockouts count an address under: its IPv4 /24 or IPv6 /64;
    anything that is not an address (a test client's name) counts as itself."""
    parsed = _address(address)
    if parsed is None:
        return address
    prefix = IPV4_PREFIX if parsed.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)
