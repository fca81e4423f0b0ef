"""Tables. Every change to them goes through controller.state.State; routes never touch them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cloudgw.model.defaults import LISTEN_PORT, TUNNEL_MTU


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MetaRow(Base):
    """One row: the global revision, bumped by every configuration change."""

    __tablename__ = "meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class SiteRow(Timestamps, Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    provider: Mapped[str] = mapped_column(String(20), default="generic")
    description: Mapped[str] = mapped_column(Text, default="")
    cloud: Mapped[str] = mapped_column(Text, default="")  # model.cloud identity as JSON; "" = none
    ha: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # HaTiming; None = the defaults
    kind: Mapped[str] = mapped_column(String(10), default="cloudgw", server_default="cloudgw")  # or external
    routed: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # routed prefixes behind the site
    routed_via: Mapped[str | None] = mapped_column(String(15), nullable=True)  # a cloudgw site's LAN router


class NetworkRow(Timestamps, Base):
    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    cidr: Mapped[str] = mapped_column(String(18))
    mode: Mapped[str] = mapped_column(String(8), default="l3")
    flood: Mapped[bool] = mapped_column(Boolean, default=False)  # L2: broadcast crosses sites
    description: Mapped[str] = mapped_column(Text, default="")


class GatewayRow(Timestamps, Base):
    __tablename__ = "gateways"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    public_key: Mapped[str | None] = mapped_column(String(44), unique=True, nullable=True)
    wan_interface: Mapped[str] = mapped_column(String(15), default="eth0")
    lan_interface: Mapped[str] = mapped_column(String(15), default="eth1")
    lan_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    listen_port: Mapped[int] = mapped_column(Integer, default=LISTEN_PORT)
    # revision of its document's last change (indexed: a replica catching up reads by it)
    doc_revision: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the last heartbeat
    priority: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    # HA role as agreed with the gateway's agent (controller/roles.py): active or standby, the epoch
    # of the agreement, why, since when, and until when the active's lease runs (epoch seconds)
    role: Mapped[str | None] = mapped_column(String(8), nullable=True)
    role_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    role_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class PoolRow(Timestamps, Base):
    __tablename__ = "pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    first: Mapped[str] = mapped_column(String(15))
    last: Mapped[str] = mapped_column(String(15))


class ConnectionRow(Timestamps, Base):
    __tablename__ = "connections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(127), unique=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    site_a_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    site_b_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    mtu: Mapped[int] = mapped_column(Integer, default=TUNNEL_MTU)
    keepalive: Mapped[int] = mapped_column(Integer, default=25)


class EndpointRow(Base):
    """What a gateway announces it sees on its LAN (the mapping's raw input)."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("network_id", "ip", "gateway_id", name="uq_endpoint_announcement"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str] = mapped_column(String(15), index=True)
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class CloudEndpointRow(Base):
    """An address the site's cloud lists on its subnet (an ENI, a Neutron port), written by the
    provider reconciler; the site's gateway announces it beside what it learns on its LAN."""

    __tablename__ = "cloud_endpoints"
    __table_args__ = (UniqueConstraint("site_id", "network_id", "ip", name="uq_cloud_endpoint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str] = mapped_column(String(15))
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True)


class ProviderStatusRow(Base):
    """The provider reconciler's ledger and last word on one site: the cloud identity it drove, what
    it created there (so deleting the site removes exactly that), and what it found or why it failed.
    Keyed by the site's name with no foreign key: it outlives the site until the cloud is cleaned."""

    __tablename__ = "provider_status"
    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    cloud: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))  # ok, converging, error, refused, removing
    error: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owned: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenRow(Base):
    """Admin, read-only, join and gateway credentials. Only a hash of the secret is kept."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public part, shown in listings
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(10))  # admin, readonly, join, gateway
    secret_hash: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(63), default="")


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(20))  # create, update, delete, join, announce
    kind: Mapped[str] = mapped_column(String(20))  # site, gateway, network, pool, connection, token, endpoints
    name: Mapped[str] = mapped_column(String(127))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    revision: Mapped[int] = mapped_column(BigInteger, index=True)  # a replica catching up reads by it


class EgressRow(Timestamps, Base):
    """Where a site's Internet traffic in a network leaves, when not at its own gateway."""

    __tablename__ = "egress"
    __table_args__ = (UniqueConstraint("site_id", "network_id", name="uq_egress_site_network"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default="local")
    via_site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), nullable=True)


class ForwardRow(Timestamps, Base):
    """A port on a gateway's public address forwarded to a VM of its site."""

    __tablename__ = "forwards"
    __table_args__ = (UniqueConstraint("gateway_id", "protocol", "public_port", name="uq_forward_public_port"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(3))
    public_port: Mapped[int] = mapped_column(Integer)
    target_ip: Mapped[str] = mapped_column(String(15))
    target_port: Mapped[int] = mapped_column(Integer)


class BurstRow(Timestamps, Base):
    """A burst policy: when to rent VMs into a site's pool (model.burst); its references to the
    network and the site are columns, so deleting either finds it."""

    __tablename__ = "burst_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the BurstSpec, without name, network and site


class BurstVmRow(Base):
    """A VM a burst policy rented: written before the launch (so its address is in the mapping
    first, and a restart finds what was being launched), removed after its termination."""

    __tablename__ = "burst_vms"
    __table_args__ = (UniqueConstraint("network_id", "ip", name="uq_burst_vm_address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(String(63), index=True)  # a name: a deleted policy's VMs are still found
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    ip: Mapped[str] = mapped_column(String(15))
    instance: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the cloud's ID, once launched
    state: Mapped[str] = mapped_column(String(10))  # pending, running, draining
    launched_at: Mapped[float] = mapped_column(Float)
    drain_until: Mapped[float | None] = mapped_column(Float, nullable=True)  # draining: removed after this


class BurstDecisionRow(Base):
    """One decision of a burst policy with its reason (actions, and each change of what it holds on)."""

    __tablename__ = "burst_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[float] = mapped_column(Float)
    demand: Mapped[float | None] = mapped_column(Float, nullable=True)
    vms: Mapped[int] = mapped_column(Integer)  # VMs counted before the decision
    action: Mapped[str] = mapped_column(String(8))  # out, in, hold, error
    change: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))


class BurstStateRow(Base):
    """What the decision loop keeps per policy between readings, and its last word."""

    __tablename__ = "burst_state"
    policy: Mapped[str] = mapped_column(String(63), primary_key=True)
    memory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    demand: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    checked_at: Mapped[float] = mapped_column(Float, default=0.0)
