"""Controller settings: each defined once with its default and one line of help. Environment
variables CLOUDGW_<NAME> override defaults; command-line flags override both."""

from __future__ import annotations

import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def redact_url(url: str) -> str:
    """A database URL without its password (postgresql://cloudgw:***@db/cloudgw)."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDGW_", extra="ignore")

    db: str = Field(
        "sqlite:////var/lib/cloudgw/controller/controller.db",
        description="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
    )
    data_dir: str = Field("/var/lib/cloudgw/controller", description="CA, server certificate and key")
    listen: str = Field("0.0.0.0:8443", description="HOST:PORT to serve the API, watch feed and dashboard on")
    insecure: bool = Field(False, description="serve plain HTTP on a non-loopback address (never in production)")
    tls_cert: str | None = Field(None, description="your own server certificate (PEM) instead of the built-in CA's")
    tls_key: str | None = Field(None, description="the key of --tls-cert")
    public_url: str | None = Field(
        None,
        description="the URL gateways reach this controller at (printed with join tokens), e.g. https://203.0.113.5:8443",
    )
    max_connections: int = Field(4096, ge=16, description="open connections at most (raise it above the gateway count)")
    max_connections_per_source: int = Field(256, ge=1, description="open connections at most from one address")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection may take to send a request's headers")
    keep_alive: float = Field(5.0, gt=0, description="seconds an idle keep-alive connection stays open")
    auth_failures_per_minute: int = Field(
        30, ge=1, description="failed authentications from one address before it must wait a minute"
    )
    offline_after: float = Field(30.0, gt=0, description="seconds without a heartbeat before a gateway is 'down'")
    audit_keep: int = Field(
        200_000, ge=0, description="audit rows kept, newest first (0: keep all); older ones are deleted each minute"
    )
    audit_days: float = Field(
        365.0, ge=0, description="audit rows older than this many days are deleted each minute (0: keep all)"
    )
    provider_interval: float = Field(
        60.0, ge=1, description="seconds between full passes over the clouds (each change also starts one)"
    )
    burst_interval: float = Field(5.0, ge=0.2, le=300, description="seconds between two passes of the burst loop")
    page_size: int = Field(
        0,
        ge=0,
        le=1000,
        description="rows in a list answer that names no ?limit (0: the whole list, as API v1 always did)",
    )
    log_level: str = Field("info", description="debug, info, warning or error")

    def describe(self) -> list[tuple[str, str, str]]:
        rows = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            shown = redact_url(str(value)) if name == "db" else str(value)
            rows.append((name, shown, info.description or ""))
        return rows
