"""Field types shared by the document, the topology file and the API schemas."""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, PlainSerializer, StringConstraints
from pydantic import BaseModel as _BaseModel

from cloudgw.model.addr import AddressRange, parse_host_port
from cloudgw.model.keys import check_key

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class StrictModel(_BaseModel):
    """Unknown fields are refused, so a typo in a file is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_range(value: Any) -> AddressRange:
    if isinstance(value, AddressRange):
        return value
    return AddressRange.parse(str(value))


def _check_mac(value: str) -> str:
    lowered = value.strip().lower()
    if not _MAC_RE.match(lowered):
        raise ValueError(f"'{value}' is not a MAC address; write six hex pairs, e.g. 02:00:00:00:00:01")
    return lowered


def _check_host_port(value: str) -> str:
    host, port = parse_host_port(value)
    return f"{host}:{port}"


Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]
"""A DNS-label-like name: lower-case letters, digits and '-', 1-63 characters."""

IfName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,15}$")]
"""A Linux interface name (at most 15 characters)."""

Port = Annotated[int, AfterValidator(lambda v: _port(v))]

RangeField = Annotated[AddressRange, BeforeValidator(_parse_range), PlainSerializer(str, return_type=str)]
KeyField = Annotated[str, AfterValidator(check_key)]
MacField = Annotated[str, AfterValidator(_check_mac)]
HostPort = Annotated[str, AfterValidator(_check_host_port)]


def _address_text(value: Any) -> Any:
    """Addresses are written as text: pydantic would otherwise take 3232235777 or true as one."""
    if isinstance(value, IPv4Address | IPv4Network) or (isinstance(value, str) and len(value) <= 18):
        return value
    raise ValueError("write the address as text, e.g. '192.168.1.10' or '192.168.1.0/24'")


def _address(value: Any) -> Any:
    """An address as text, read by the C library (inet_pton accepts exactly the dotted quads that
    ipaddress does: four decimal parts up to 255, no leading zeros; tests/unit/test_fields.py).
    ipaddress's own parser, in Python, was a quarter of an agent's time reading a document; anything
    inet_pton refuses goes on to it, for its error message."""
    if isinstance(value, str):
        try:
            return IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big"))
        except (OSError, ValueError):  # not an address, or a NUL in it
            pass
    return _address_text(value)


def address_text(value: IPv4Address) -> str:
    """An address as text, by the C library (str() of an IPv4Address runs in Python: a tenth of the
    controller's time writing documents to 1,000 gateways)."""
    return socket.inet_ntoa(value.packed)


def _plain_text(value: str) -> str:
    """Free text (descriptions): no NUL (PostgreSQL refuses it) and no other control character but
    tab and newline."""
    if any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value):
        raise ValueError("contains a control character (NUL or similar); remove it")
    return value


IPv4 = Annotated[IPv4Address, BeforeValidator(_address), PlainSerializer(address_text, return_type=str)]
Cidr = Annotated[IPv4Network, BeforeValidator(_address_text), PlainSerializer(str, return_type=str)]
Text = Annotated[str, StringConstraints(max_length=500), AfterValidator(_plain_text)]
"""A description: up to 500 characters, no control characters but tab and newline."""


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 1-65535")
    return value
