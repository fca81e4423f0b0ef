"""Address math for pools and endpoints (IPv4).

A pool is an inclusive range of addresses. Admins write it as "192.168.1.1-192.168.1.10", as a CIDR
("192.168.1.16/28") or as one address. The kernel and WireGuard want prefixes, so a range is also
turned into the smallest list of CIDRs that covers exactly it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True, order=True)
class AddressRange:
    """An inclusive IPv4 range; first <= last."""

    first: IPv4Address
    last: IPv4Address

    @classmethod
    def parse(cls, text: str) -> AddressRange:
        """Parse "a-b", "a/len" or "a". Raises ValueError with a message fit for a user."""
        raw = str(text).strip()
        if not raw:
            raise ValueError("empty address range")
        try:
            if "-" in raw:
                left, right = (part.strip() for part in raw.split("-", 1))
                first, last = IPv4Address(left), IPv4Address(right)
            elif "/" in raw:
                net = IPv4Network(raw, strict=True)
                first, last = net.network_address, net.broadcast_address
            else:
                first = last = IPv4Address(raw)
        except ValueError as exc:
            raise ValueError(
                f"'{raw}' is not an IPv4 range; write FIRST-LAST (192.168.1.1-192.168.1.10), "
                f"a CIDR (192.168.1.16/28) or one address ({exc})"
            ) from None
        if int(first) > int(last):
            raise ValueError(f"'{raw}': first address {first} is after last address {last}")
        return cls(first, last)

    def __str__(self) -> str:
        if self.first == self.last:
            return str(self.first)
        return f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, IPv4Address):
            return False
        return int(self.first) <= int(address) <= int(self.last)

    def overlaps(self, other: AddressRange) -> bool:
        return int(self.first) <= int(other.last) and int(other.first) <= int(self.last)

    def within(self, network: IPv4Network) -> bool:
        return self.first in network and self.last in network

    def addresses(self) -> Iterator[IPv4Address]:
        for value in range(int(self.first), int(self.last) + 1):
            yield IPv4Address(value)

    def minus(self, others: Iterable[AddressRange]) -> list[AddressRange]:
        """What is left of this range once the others are taken out, in order."""
        left = [(int(self.first), int(self.last))]
        for other in others:
            lo, hi = int(other.first), int(other.last)
            pieces = []
            for a, b in left:
                if hi < a or lo > b:
                    pieces.append((a, b))
                    continue
                if a < lo:
                    pieces.append((a, lo - 1))
                if hi < b:
                    pieces.append((hi + 1, b))
            left = pieces
        return [AddressRange(IPv4Address(a), IPv4Address(b)) for a, b in left]

    def cidrs(self) -> list[IPv4Network]:
        """The smallest set of prefixes covering exactly this range (remembered: an agent asks for
        every pool's at every document, and the summary runs in Python)."""
        return list(_cidrs(int(self.first), int(self.last)))


@functools.lru_cache(maxsize=16384)
def _cidrs(first: int, last: int) -> tuple[IPv4Network, ...]:
    return tuple(ipaddress.summarize_address_range(IPv4Address(first), IPv4Address(last)))


def host_network(address: IPv4Address) -> IPv4Network:
    return IPv4Network(f"{address}/32")


def merge_ranges(ranges: Iterable[AddressRange]) -> list[AddressRange]:
    """The same addresses as the fewest ranges (overlapping and adjacent ones joined); sorted."""
    out: list[AddressRange] = []
    for item in sorted(ranges):
        if out and int(item.first) <= int(out[-1].last) + 1:
            if item.last > out[-1].last:
                out[-1] = AddressRange(out[-1].first, item.last)
        else:
            out.append(item)
    return out


def collapse(networks: Iterable[IPv4Network]) -> list[IPv4Network]:
    """Merge adjacent and contained prefixes; sorted."""
    return sorted(ipaddress.collapse_addresses(list(networks)))


_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DOTTED = re.compile(r"^[0-9.]+$")
MAX_HOST_PORT = 255  # what every database stores for an endpoint (a long DNS name, ':' and a port)


def check_host(host: str) -> str:
    """An IPv4 address or a DNS name (RFC 1123 labels of 1-63 letters, digits and '-', 253 at most).
    Anything else, a newline or a space included, is refused: the host ends up in other gateways'
    WireGuard configuration."""
    if _DOTTED.match(host):
        try:
            IPv4Address(host)
        except ValueError:
            raise ValueError(f"'{host}' is not an IPv4 address") from None
        return host
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        raise ValueError(f"'{host[:40]}' is not a host name: 1-253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(
                f"'{host[:80]}' is not a host name: each dot-separated label must be 1-63 letters, digits "
                "or '-', not starting or ending with '-'"
            )
    return name.lower()


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """Split "host:port" (IPv4 or a DNS name) and check both. Raises ValueError naming what is wrong."""
    raw = str(text)
    if len(raw) > MAX_HOST_PORT:
        raise ValueError(f"'{raw[:40]}...' is longer than {MAX_HOST_PORT} characters; write HOST:PORT")
    if raw != raw.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw):
        raise ValueError(f"{raw[:60]!r} contains spaces or control characters; write HOST:PORT")
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"'{raw}' has no port; write HOST:PORT, e.g. 203.0.113.10:51820")
        host, port_text = raw, str(default_port)
    if not host:
        raise ValueError(f"'{raw}' has no host; write HOST:PORT, e.g. 203.0.113.10:51820")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"'{raw}': port '{port_text}' is not a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"'{raw}': port {port} is outside 1-65535")
    if not port_text.isdigit():
        raise ValueError(f"'{raw}': port '{port_text}' is not a number")
    return check_host(host), port


@functools.lru_cache(maxsize=65536)
def usable_endpoint(endpoint: str | None) -> str | None:
    """A stored endpoint as peers may use it, or None. Rows written before endpoints were checked
    (or by hand) must not break every peer's document: such a peer is listed without an endpoint
    (it can still call us), and the gateway's view says why. Cached: a hub's document checks the
    endpoint of each of its peers, every render."""
    if endpoint is None:
        return None
    try:
        host, port = parse_host_port(endpoint)
    except ValueError:
        return None
    return f"{host}:{port}"
