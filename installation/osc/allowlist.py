"""Which senders may control the piece: IP addresses and networks, IPv4 and IPv4-mapped IPv6 alike.

Shared by the OSC server and the web remote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def plain_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack socket sees IPv4 senders) as plain IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def plain_network(network: Network) -> Network:
    """An allowlist entry inside ::ffff:0:0/96 as the IPv4 network it stands for, so both spellings match."""
    mapped = ipaddress.ip_network("::ffff:0:0/96")
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(mapped):
        return ipaddress.ip_network((network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def parse_allowlist(entries: Iterable[str] | None, what: str = "OSC allowlist") -> tuple[Network, ...]:
    """Turn addresses or networks ("192.168.1.20", "10.0.0.0/24") into networks; raises ValueError.

    IPv4-mapped entries (::ffff:192.168.1.20) become IPv4, and senders are compared the same way, so an IPv4
    entry matches an IPv4 sender whether the socket is IPv4 or dual-stack (--osc-host ::)."""
    if entries is None:
        return ()
    if isinstance(entries, str):
        entries = [part for part in entries.replace(",", " ").split() if part]
    networks = []
    for entry in entries:
        try:
            networks.append(plain_network(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"{what} entry {entry!r} is not an IP address or network "
                "like 192.168.1.20 or 10.0.0.0/24"
            ) from None
    if not networks:
        raise ValueError(f"{what} is empty; leave it unset to accept every sender")
    return tuple(networks)
