"""Agent settings: each defined once, with its default and one line of help. Environment variables
CLOUDGW_AGENT_<NAME> override defaults; command-line flags override both."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDGW_AGENT_", extra="ignore")

    state_dir: str = Field("/var/lib/cloudgw", description="private key, last document, learned endpoints")
    run_dir: str = Field("/run/cloudgw", description="pid files, status and wireguard-go logs")
    wg_socket_dir: str = Field("/var/run/wireguard", description="where wireguard-go puts its UAPI socket")
    wg_backend: Literal["auto", "kernel", "wireguard-go"] = Field(
        "auto",
        description="WireGuard in the kernel where the module loads (auto), always (kernel), or wireguard-go",
    )
    wg_gogc: int = Field(
        50,
        ge=0,
        le=1000,
        description="GOGC of the wireguard-go the agent starts (Go's default is 100; 0 leaves it to Go): "
        "50 keeps its memory flat under churn at no measured cost in throughput (docs/benchmarks.md)",
    )
    interval: float = Field(10.0, gt=0, description="seconds between full reconciles (repairs hand edits)")
    poll: float = Field(0.5, gt=0, description="seconds between checks of the state file for changes")
    learn: bool = Field(True, description="learn local endpoints (ARP, neighbour events, probes)")
    probe_rate: float = Field(10.0, ge=0, description="ARP probes per second over the local pools; 0 = off")
    expire_after: float = Field(300.0, gt=0, description="forget an endpoint not seen for this many seconds")
    log_level: str = Field("info", description="debug, info, warning or error")
    metrics: str = Field("127.0.0.1:9108", description="HOST:PORT for Prometheus /metrics; empty = off")
    path_probe_interval: float = Field(
        60.0, ge=0, description="seconds between path-MTU probes to each peer (DF echo); 0 = local WAN MTU only"
    )

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, effective value, help) for --print-config."""
        rows = []
        for name, info in type(self).model_fields.items():
            rows.append((name, str(getattr(self, name)), info.description or ""))
        return rows
