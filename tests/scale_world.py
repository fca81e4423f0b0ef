"""A controller's database at the scale of issue 20 (hundreds of sites, 100,000 endpoints), made in
seconds: the topology goes through the API (PUT /topology, one transaction), and what a thousand
gateways would report (their keys, heartbeats and announcements) is written straight into the
tables, the way a second controller replica writing the same database would appear to this one.
Used by the large browser test and by bench/adminview.py; no root needed."""

from __future__ import annotations

import base64
import os
import time
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import select, update

from cloudgw.controller.db.engine import make_engine
from cloudgw.controller.db.models import EndpointRow, GatewayRow, MetaRow, NetworkRow

PROVIDERS = ("aws", "openstack", "generic")
NETWORK = "big"


def site_name(index: int) -> str:
    return f"{('dc', 'aws', 'os')[index % 3]}-{index:04d}"


def first_address(index: int) -> int:
    return int(IPv4Address("10.0.0.0")) + index * 256 + 1


def scale_topology(sites: int) -> dict[str, Any]:
    """Hub and spokes in one 10.0.0.0/8 network: site i owns 10.x.y.1-254 (x.y = i), one gateway
    each; providers take turns so the topology view has groups."""
    names = [site_name(i) for i in range(sites)]
    return {
        "sites": [
            {"name": name, "provider": PROVIDERS[(i + 2) % 3], "description": f"data centre {i}"}
            for i, name in enumerate(names)
        ],
        "networks": [{"name": NETWORK, "cidr": "10.0.0.0/8"}],
        "pools": [
            {
                "network": NETWORK,
                "site": name,
                "range": f"{IPv4Address(first_address(i))}-{IPv4Address(first_address(i) + 253)}",
            }
            for i, name in enumerate(names)
        ],
        "gateways": [
            {"name": f"gw-{name}", "site": name, "endpoint": f"192.0.2.{i % 250 + 1}:{51820 + i // 250}"}
            for i, name in enumerate(names)
        ],
        "connections": [{"network": NETWORK, "site_a": names[0], "site_b": name} for name in names[1:]],
    }


def seed_reports(db: str, sites: int, per_site: int, pending_every: int = 0, offline_every: int = 0) -> int:
    """Gateways joined and online (every `pending_every`-th never joined, every `offline_every`-th
    silent), each announcing `per_site` endpoints of its pool; bumps the revision so the running
    controller reloads. Returns the number of endpoints written."""
    engine = make_engine(db)
    now = time.time()
    written = 0
    with engine.begin() as connection:
        network_id = connection.scalar(select(NetworkRow.id).where(NetworkRow.name == NETWORK))
        ids = dict(connection.execute(select(GatewayRow.name, GatewayRow.id)).all())
        for i in range(sites):
            gateway = f"gw-{site_name(i)}"
            if pending_every and i % pending_every == pending_every - 1:
                continue
            seen = None if offline_every and i % offline_every == offline_every - 1 else _utc(now)
            key = base64.b64encode(os.urandom(32)).decode()
            connection.execute(
                update(GatewayRow)
                .where(GatewayRow.id == ids[gateway])
                .values(public_key=key, joined_at=_utc(now - 3600), last_seen=seen, version="scale")
            )
            rows = [
                {
                    "network_id": network_id,
                    "gateway_id": ids[gateway],
                    "ip": str(IPv4Address(first_address(i) + k)),
                    "mac": f"02:00:{(i >> 8) & 255:02x}:{i & 255:02x}:00:{k:02x}",
                    "first_seen": now - 600,
                    "last_seen": now,
                }
                for k in range(per_site)
            ]
            if rows:
                connection.execute(EndpointRow.__table__.insert(), rows)
                written += len(rows)
        connection.execute(update(MetaRow).where(MetaRow.id == 1).values(revision=MetaRow.revision + 1))
    engine.dispose()
    return written


def _utc(stamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)
