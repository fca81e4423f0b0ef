"""API schemas, in families: Base / Create / Update / Public / List. Field shapes are checked here;
relations (overlaps, references) by model.rules inside the one mutation path."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cloudgw.model.fields import IfName, IPv4, KeyField, MacField, Name, RangeField
from cloudgw.model.topologyfile import (
    ConnectionSpec,
    EgressSpec,
    GatewaySpec,
    NetworkSpec,
    PoolSpec,
    PortForwardSpec,
    SiteSpec,
)

Provider = Literal["generic", "lab", "aws", "openstack"]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp the API shows is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Schema):
    total: int


# sites ------------------------------------------------------------------------------------------
class SiteCreate(SiteSpec):
    pass


class SiteUpdate(Schema):
    name: Name | None = None
    provider: Provider | None = None
    description: str | None = Field(None, max_length=500)


class SitePublic(SiteSpec):
    created_at: Timestamp
    updated_at: Timestamp
    gateways: list[str] = []
    connections: list[str] = []


class SiteList(Page):
    items: list[SitePublic]


# networks ---------------------------------------------------------------------------------------
class NetworkCreate(NetworkSpec):
    pass


class NetworkUpdate(Schema):
    name: Name | None = None
    cidr: IPv4Network | None = None
    mode: Literal["l3", "l2"] | None = None
    description: str | None = Field(None, max_length=500)


class NetworkPublic(NetworkSpec):
    created_at: Timestamp
    updated_at: Timestamp


class NetworkList(Page):
    items: list[NetworkPublic]


# pools ------------------------------------------------------------------------------------------
class PoolCreate(PoolSpec):
    pass


class PoolUpdate(Schema):
    name: Name | None = None
    range: RangeField | None = None


class PoolPublic(PoolSpec):
    name: str  # type: ignore[assignment]
    size: int
    created_at: Timestamp
    updated_at: Timestamp


class PoolList(Page):
    items: list[PoolPublic]


# gateways ---------------------------------------------------------------------------------------
class GatewayCreate(GatewaySpec):
    pass


class GatewayUpdate(Schema):
    name: Name | None = None
    site: Name | None = None
    endpoint: str | None = None
    wan_interface: IfName | None = None
    lan_interface: IfName | None = None
    lan_addresses: list[IPv4] | None = None
    listen_port: int | None = None


class GatewayPublic(GatewaySpec):
    public_key: str | None
    joined_at: Timestamp | None
    last_seen: Timestamp | None
    online: bool
    version: str | None
    doc_revision: int
    applied_revision: int | None
    last_error: str | None
    nat_sessions: int | None = None
    tunnels: list[dict[str, Any]] = []  # per peer: name, endpoint, handshake age, bytes (from heartbeats)
    created_at: Timestamp
    updated_at: Timestamp


class GatewayList(Page):
    items: list[GatewayPublic]


# connections ------------------------------------------------------------------------------------
class ConnectionCreate(ConnectionSpec):
    pass


class ConnectionUpdate(Schema):
    name: Name | None = None
    enabled: bool | None = None
    mtu: int | None = None
    keepalive: int | None = None


class ConnectionHealth(Schema):
    state: str  # up, degraded, down, disabled, pending
    handshake_age_s: float | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    reason: str = ""


class ConnectionPublic(ConnectionSpec):
    name: str  # type: ignore[assignment]
    health: ConnectionHealth
    created_at: Timestamp
    updated_at: Timestamp


class ConnectionList(Page):
    items: list[ConnectionPublic]


# egress and port forwards ----------------------------------------------------------------------
class EgressCreate(EgressSpec):
    pass


class EgressUpdate(Schema):
    mode: Literal["local", "via", "none"] | None = None
    via: Name | None = None


class EgressPublic(EgressSpec):
    name: str
    created_at: Timestamp
    updated_at: Timestamp


class EgressList(Page):
    items: list[EgressPublic]


class ForwardCreate(PortForwardSpec):
    pass


class ForwardUpdate(Schema):
    protocol: Literal["tcp", "udp"] | None = None
    public_port: int | None = Field(None, ge=1, le=65535)
    target_ip: IPv4 | None = None
    target_port: int | None = Field(None, ge=1, le=65535)


class ForwardPublic(PortForwardSpec):
    site: str
    public_address: str | None  # where the Internet reaches it: the gateway's public address and this port
    created_at: Timestamp
    updated_at: Timestamp


class ForwardList(Page):
    items: list[ForwardPublic]


# the whole topology -----------------------------------------------------------------------------
class PlanStep(Schema):
    op: str
    kind: str
    name: str
    body: dict[str, Any]
    before: dict[str, Any]
    text: str


class ApplyResult(Schema):
    dry_run: bool
    revision: int  # the revision the plan was made at (dry run) or that the apply produced
    steps: list[PlanStep]


# endpoints (the mapping) ------------------------------------------------------------------------
class EndpointPublic(Schema):
    network: str
    ip: str
    mac: str | None
    gateway: str
    site: str
    first_seen: float
    last_seen: float
    effective: bool


class EndpointList(Page):
    items: list[EndpointPublic]
    conflicts: list[dict[str, Any]] = []


class Resolution(Schema):
    network: str
    ip: str
    state: str
    site: str | None
    gateway: str | None
    mac: str | None
    since: float | None
    reason: str
    announcements: list[dict[str, Any]]


class Validation(Schema):
    gateway: str
    source: str
    allowed: bool
    reason: str


# tokens -----------------------------------------------------------------------------------------
class TokenCreate(Schema):
    name: Name
    role: Literal["admin", "readonly", "join"]
    gateway: Name | None = None  # join tokens: the gateway that may join with it
    ttl_hours: float | None = Field(None, gt=0, le=24 * 365)  # join tokens default to 24 h


class TokenPublic(Schema):
    id: str
    name: str
    role: str
    gateway: str | None
    created_at: Timestamp
    expires_at: Timestamp | None
    used_at: Timestamp | None
    revoked: bool


class TokenCreated(TokenPublic):
    token: str  # shown once; only its hash is kept


class TokenList(Page):
    items: list[TokenPublic]


# audit ------------------------------------------------------------------------------------------
class AuditPublic(Schema):
    id: int
    at: Timestamp
    actor: str
    action: str
    kind: str
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    revision: int


class AuditList(Page):
    items: list[AuditPublic]


# agents -----------------------------------------------------------------------------------------
class JoinRequest(Schema):
    public_key: KeyField
    endpoint: str | None = None  # override the admin's endpoint (HOST:PORT), e.g. discovered by the agent
    version: str | None = Field(None, max_length=40)


class JoinResponse(Schema):
    gateway: str
    credential: str  # the gateway's own token from now on; store it 0600


class AnnouncedEndpoint(Schema):
    ip: IPv4
    mac: MacField | None = None


class Announce(Schema):
    network: Name
    endpoints: list[AnnouncedEndpoint] = Field(max_length=100_000)


class AnnounceResult(Schema):
    added: int
    removed: int
    changed: int
    revision: int


class Heartbeat(Schema):
    model_config = ConfigDict(extra="allow")
    version: str | None = None
    revision: int | None = None  # the document revision the agent has applied
    last_error: str | None = None
    peers: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    reconcile_ms: float | None = None
    endpoints: int | None = None
    nat_sessions: int | None = None  # how many connections the gateway NATs right now
    sessions: list[dict[str, Any]] = Field([], max_length=1000)  # the first of them
