"""Connections to addresses a caller chose (notification endpoints, @context URLs): refuse the networks
that no caller should reach through the platform.

The default blocks link-local addresses, where cloud metadata services live (169.254.169.254), and the
unspecified address. Deployments whose receivers are never internal add their private ranges with
``CITYHUB_OUTBOUND_BLOCKED_NETWORKS``. The check resolves the host name and refuses it when any address falls
in a blocked network; a name that resolves differently between the check and the connection (DNS rebinding)
is not covered, so put the platform behind an egress proxy where that matters.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache

DEFAULT_BLOCKED_NETWORKS = ("169.254.0.0/16", "fe80::/10", "0.0.0.0/32", "::/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(ValueError):
    """The host is, or resolves to, an address in a blocked network."""


@lru_cache(maxsize=64)
def parse_networks(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def check_host(host: str, port: int | None, blocked: Iterable[str]) -> None:
    """Raise BlockedAddress when ``host`` is or resolves to a blocked address; resolution failures pass
    (the connection itself then fails with its own error)."""
    networks = parse_networks(tuple(blocked))
    if not networks:
        return
    for address in _addresses(host, port):
        if any(address in network for network in networks if address.version == network.version):
            raise BlockedAddress(f"{host} resolves to {address}, in a network this platform does not call")


def _addresses(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port or 0, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
