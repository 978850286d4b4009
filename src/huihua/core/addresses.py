"""Client IP addresses: parsing, the proxy networks an operator trusts, and the key that every
per-IP limit counts under."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_BUCKET_PREFIX = 64  # one subscriber gets a whole /64 and can rotate through it at will


def parse_ip(text: str) -> IPAddress | None:
    """The address `text` names, or None. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address,
    so that one client never has two spellings."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (`127.0.0.1`, `10.0.0.0/8`, `fd00::/8`); ValueError naming the bad one."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def is_trusted(address: IPAddress | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in net for net in networks)


def limit_bucket(ip: str | None) -> str | None:
    """The key a per-IP limit counts `ip` under: the address itself for IPv4, its /64 for IPv6
    (else rotating through one's own /64 would give a fresh limit per request)."""
    address = parse_ip(ip) if ip else None
    if address is None:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_BUCKET_PREFIX), strict=False))
    return str(address)
