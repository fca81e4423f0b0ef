"""API schemas, in families: Base / Create / Update / Public / List. Field shapes are checked here;
relations (overlaps, references) by model.rules inside the one mutation path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cloudgw.model.burst import Budget, BurstSpec, Signal, Template
from cloudgw.model.cloud import AwsCloud, CloudId, OpenStackCloud
from cloudgw.model.fields import Cidr, HostPort, IfName, IPv4, KeyField, MacField, Name, Port, RangeField, Text
from cloudgw.model.topologyfile import (
    ConnectionSpec,
    EgressSpec,
    GatewaySpec,
    HaSpec,
    NetworkSpec,
    PoolSpec,
    PortForwardSpec,
    SiteSpec,
    TopologyFile,
)

Provider = Literal["generic", "lab", "aws", "openstack"]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp the API shows is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemBody(Schema):
    field: str
    message: str
    fix: str | None = None


class ErrorBody(Schema):
    """Every refusal: `error` says which kind; `problems` name the field and the fix (4xx with a body)."""

    error: str
    message: str | None = None
    problems: list[ProblemBody] = []
    reason: str | None = None  # 401/403/429: a short word (invalid, expired, used, forbidden)
    name: str | None = None  # 404: the name that was not found


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no valid credential (Authorization: Bearer <token>)"},
    403: {"model": ErrorBody, "description": "the credential may not do this (read-only, gateway, join)"},
    404: {"model": ErrorBody, "description": "no such object"},
    409: {"model": ErrorBody, "description": "conflicts with what exists (a name, an overlap, a revision)"},
    413: {"model": ErrorBody, "description": "the body is larger than this path allows"},
    422: {"model": ErrorBody, "description": "invalid input: each problem names its field and the fix"},
    429: {"model": ErrorBody, "description": "too many failed authentications from this address"},
}


class Page(Schema):
    total: int  # rows matching the filters, on every page
    next_cursor: str | None = None  # pass as ?cursor= for the next page; null on the last page


# sites ------------------------------------------------------------------------------------------
class SiteCreate(SiteSpec):
    pass


class SiteUpdate(Schema):
    name: Name | None = None
    provider: Provider | None = None
    description: Text | None = None
    aws: AwsCloud | None = None  # null: cloudgw stops driving this site's cloud
    openstack: OpenStackCloud | None = None
    ha: HaSpec | None = None  # null: the default timing
    kind: Literal["cloudgw", "external"] | None = None
    routed: list[Cidr] | None = Field(None, max_length=64)
    routed_via: IPv4 | None = None

    @model_validator(mode="after")
    def _one_cloud(self) -> SiteUpdate:
        if self.aws is not None and self.openstack is not None:
            raise ValueError("a site has one cloud: give either 'aws' or 'openstack'")
        return self


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
    cidr: Cidr | None = None
    mode: Literal["l3", "l2"] | None = None
    description: Text | None = None
    flood: bool | None = None


class L2View(Schema):
    """How an L2 network is carried (docs/l2.md)."""

    vni: int  # the VXLAN network identifier, the same on every gateway
    mtu: int  # the MTU budget inside it: the smallest connection's tunnel MTU minus VXLAN's 50 bytes
    sites: dict[str, str]  # per site with a pool: "l2", or why it stays l3 inside the network


class NetworkPublic(NetworkSpec):
    created_at: Timestamp
    updated_at: Timestamp
    l2: L2View | None = None


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
    endpoint: HostPort | None = None
    wan_interface: IfName | None = None
    lan_interface: IfName | None = None
    lan_addresses: list[IPv4] | None = Field(None, max_length=16)
    listen_port: Port | None = None
    priority: int | None = Field(None, ge=1, le=255)
    public_key: KeyField | None = None  # an external site's router only (a cloudgw gateway's comes by joining)


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
    role: Literal["active", "standby"] | None = None  # of an HA pair (None: a site's only gateway)
    role_epoch: int = 0
    role_reason: str | None = None  # why it took or left the active role
    role_since: Timestamp | None = None
    ha: HaReport | None = None  # the gateway's own view (last heartbeat): partners heard, recent changes
    problems: list[PeerProblem] = []  # peers this gateway could not configure, and why (from heartbeats)
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
    mtu: int | None = Field(None, ge=0, le=65535)
    keepalive: int | None = Field(None, ge=0, le=86400)


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


# burst policies ---------------------------------------------------------------------------------
class BurstCreate(BurstSpec):
    pass


class BurstUpdate(Schema):
    """Any top-level field of a policy; a nested block (signal, budget, template) is replaced whole."""

    name: Name | None = None
    network: Name | None = None
    site: Name | None = None
    pool: Name | None = None
    signal: Signal | None = None
    scale_out_above: float | None = None
    scale_in_below: float | None = None
    min_vms: int | None = Field(None, ge=0, le=1000)
    max_vms: int | None = Field(None, ge=0, le=1000)
    step: int | None = Field(None, ge=1, le=100)
    warmup: float | None = Field(None, ge=0, le=86_400)
    cooldown: float | None = Field(None, ge=0, le=86_400)
    budget: Budget | None = None
    template: Template | None = None
    drain_hook: str | None = None
    drain_grace: float | None = Field(None, ge=0, le=3600)
    enabled: bool | None = None


class BurstPublic(BurstSpec):
    created_at: Timestamp
    updated_at: Timestamp


class BurstList(Page):
    items: list[BurstPublic]


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
    controller_url: str | None = None  # join tokens: where gateways reach the controller (--public-url)


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
    endpoint: HostPort | None = None  # override the admin's endpoint (HOST:PORT), e.g. discovered by the agent
    version: Annotated[str, Field(max_length=40, pattern=r"^[^\x00]*$")] | None = None


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


Count = Annotated[int, Field(ge=0, le=2**63 - 1)]  # a counter that fits every database's BIGINT
ShortText = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]  # no NUL: PostgreSQL refuses it


class PeerReport(Schema):
    """One WireGuard peer as the gateway sees it (wireguard.PeerStats)."""

    public_key: KeyField
    endpoint: ShortText | None = None
    rx_bytes: Count = 0
    tx_bytes: Count = 0
    last_handshake: float = Field(0.0, ge=0, le=1e11)  # unix time; 0 = never
    allowed_ips: list[Annotated[str, Field(max_length=18)]] = Field([], max_length=10_000)


class PathReport(Schema):
    """The tunnel MTU a gateway uses towards one peer, and why (dataplane.pathmtu.PeerMtu)."""

    peer: Name
    mtu: int = Field(ge=576, le=65535)
    configured: int = Field(ge=576, le=65535)
    path: int | None = Field(None, ge=68, le=65535)
    source: Literal["probe", "wan", "configured"]
    warning: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] | None = None


class PeerProblem(Schema):
    """A peer the gateway could not configure (its endpoint does not resolve, WireGuard refused it)."""

    peer: Annotated[str, Field(max_length=63)]
    problem: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")]


class SessionReport(Schema):
    protocol: Annotated[str, Field(max_length=10)]
    state: Annotated[str, Field(max_length=20)] = ""
    source: Annotated[str, Field(max_length=60)]
    destination: Annotated[str, Field(max_length=60)]
    translated: Annotated[str, Field(max_length=60)] = ""
    kind: Literal["snat", "dnat"]


class RoleRequest(Schema):
    """A gateway of an HA pair asks for (or renews, or gives up) its site's active role."""

    role: Literal["active", "standby"]
    epoch: int = Field(0, ge=0, le=2**62)  # the newest epoch this gateway knows for its site
    reason: str = Field("", max_length=200)


class RoleAnswer(Schema):
    granted: bool  # for "active": the lease is this gateway's; for "standby": recorded
    role: Literal["active", "standby"]  # this gateway's role as the controller now records it
    active: str | None  # the site's active gateway (None: none holds the lease)
    epoch: int
    lease_s: float  # renew before this many seconds pass
    reason: str = ""


ShortText = Annotated[str, Field(max_length=300, pattern=r"^[^\x00]*$")]


class PartnerHeard(Schema):
    model_config = ConfigDict(extra="ignore")
    name: Name
    role: Literal["active", "standby"]
    heard_s_ago: float = Field(ge=0, le=1e9)
    paths: list[Literal["lan", "wan"]] = Field([], max_length=2)
    healthy: int = Field(0, ge=0, le=100_000)


class RoleChange(Schema):
    model_config = ConfigDict(extra="ignore")
    at: float = Field(ge=0, le=1e11)
    role: Literal["active", "standby"]
    epoch: int = Field(ge=0, le=2**62)
    reason: ShortText


class HaReport(Schema):
    """An HA pair member's own view: its role, why, what it hears of its partners."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["active", "standby"]
    epoch: int = Field(0, ge=0, le=2**62)
    reason: ShortText = ""
    since: float = Field(0, ge=0, le=1e11)
    partners: list[PartnerHeard] = Field([], max_length=4)
    changes: list[RoleChange] = Field([], max_length=20)


class Heartbeat(Schema):
    """Telemetry from a gateway: untrusted input, so every field is typed and bounded here, and the
    controller's views can rely on what they read back. Unknown fields are ignored (not stored), so a
    newer agent can report to an older controller during a rolling upgrade."""

    model_config = ConfigDict(extra="ignore")

    version: Annotated[str, Field(max_length=40, pattern=r"^[^\x00]*$")] | None = None
    revision: int | None = Field(None, ge=0, le=2**62)  # the document revision the agent has applied
    last_error: Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")] | None = None
    peers: list[PeerReport] = Field([], max_length=1000)
    counters: dict[Annotated[str, Field(max_length=40, pattern=r"^[a-z0-9_]+$")], Count] = Field({}, max_length=32)
    reconcile_ms: float | None = Field(None, ge=0, le=1e7)
    endpoints: int | None = Field(None, ge=0, le=10_000_000)
    nat_sessions: int | None = Field(None, ge=0, le=2**62)  # how many connections the gateway NATs right now
    sessions: list[SessionReport] = Field([], max_length=100)  # the first of them
    paths: list[PathReport] = Field([], max_length=1000)  # per peer: the tunnel MTU used and why
    problems: list[PeerProblem] = Field([], max_length=1000)  # peers not configured, and why
    ha: HaReport | None = None  # a gateway of an HA pair: its role as it sees it


# providers ----------------------------------------------------------------------------------------
class ProviderStatus(Schema):
    """The provider reconciler's last word on one site (docs/providers.md)."""

    site: str
    provider: str
    state: Literal["ok", "converging", "error", "refused", "removing"]
    error: str = ""
    detail: dict[str, Any] = {}
    checked_at: Timestamp


class FindingBody(Schema):
    site: str
    check: str
    severity: Literal["error", "warning", "change", "ok"]
    message: str
    fix: str = ""


class PreflightRequest(Schema):
    topology: TopologyFile | None = None  # none: the live topology


class PreflightResult(Schema):
    ok: bool  # no finding of severity error
    findings: list[FindingBody]


class BootstrapRequest(Schema):
    """`cloudgw gateway bootstrap`: user-data for a new gateway machine, and optionally its launch."""

    launch: bool = False  # start the machine through the site's provider (needs the controller's --public-url)
    image: CloudId | None = None  # AMI (ami-...) or Glance image ID
    size: CloudId | None = None  # EC2 instance type (m5.large) or Nova flavor ID
    key_name: CloudId | None = None  # an SSH key pair the cloud knows
    package: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\[\],=<>!~+:/@-]*$")] = "cloudgw"
    ttl_hours: float = Field(24.0, gt=0, le=24 * 7)


class BootstrapResult(Schema):
    gateway: str
    controller_url: str
    user_data: str  # holds a one-time join token: treat it like one
    token_name: str
    launched: dict[str, str] | None = None  # instance and interface IDs


# explain ------------------------------------------------------------------------------------------
class ExplainRequest(Schema):
    src: IPv4
    dst: IPv4
    network: Name | None = None  # default: the one network that holds both


class HopBody(Schema):
    hop: str  # network, source, destination, path, connection, "gateway NAME", "tunnel A -> B", "... (return)"
    state: Literal["ok", "broken", "warning", "unknown"]
    detail: str
    fix: str = ""
    ms: float | None = None  # kernel hops: how long the gateway took to answer


class ExplainResult(Schema):
    """The path from src to dst, hop by hop (docs/explain.md); verdict: the worst hop's state."""

    src: str
    dst: str
    network: str | None
    verdict: Literal["ok", "broken", "warning", "unknown"]
    hops: list[HopBody]
    took_ms: float


# questions to a gateway (through its document watch; no port opens on a gateway) ----------------
class PathQuestion(Schema):
    """The controller asks a gateway about its side of one path (explain)."""

    id: Annotated[str, Field(pattern=r"^[a-f0-9]{32}$")]
    kind: Literal["path"] = "path"
    target: IPv4  # the address on the other side
    peer: Name  # the gateway on the other side
    peer_key: KeyField | None = None
    probe: IPv4 | None = None  # the other gateway's LAN address: ping it through the tunnel with DF
    mtu: int = Field(1420, ge=576, le=9000)


class QuestionList(Schema):
    questions: list[PathQuestion] = Field([], max_length=16)


class RouteSeen(Schema):
    dst: Annotated[str, Field(max_length=18)]
    dev: Annotated[str, Field(max_length=15)]
    mtu: int | None = Field(None, ge=0, le=65535)


class ProbeResult(Schema):
    sizes: list[int] = Field([], max_length=4)
    answered: list[int] = Field([], max_length=4)


class PathAnswer(Schema):
    """A gateway's own view of one path, from its kernel (untrusted input: typed and bounded)."""

    public_key: KeyField | None = None  # the gateway's own WireGuard key, as its kernel holds it
    route: RouteSeen | None = None  # the route the kernel holds for the target (None: none)
    proxy_arp: bool = False  # the gateway answers ARP for the target on its LAN
    peer_present: bool = False  # a WireGuard peer with the key the controller named
    peer_allows_target: bool = False
    last_handshake: float = Field(0.0, ge=0, le=1e11)
    counters: dict[Annotated[str, Field(max_length=40, pattern=r"^[a-z0-9_]+$")], Count] = Field({}, max_length=32)
    probe: ProbeResult | None = None
    error: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] | None = None
