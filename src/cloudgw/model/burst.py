"""Burst policies (pure): when to rent public VMs into a network's public pool and when to give
them back. A policy names a demand signal, thresholds with hysteresis, bounds, timing, a budget and
the VM template; it holds references and settings only, never a credential (a signal's URL may not
carry a password, and the user-data is the admin's own script).

Every field is typed and bounded here, at the boundary, the same for the API, the topology file and
the database (stored as this model's JSON); what relates fields to each other and to the topology
(hysteresis, bounds, a signal's required parts, the site and pools) is `rules.check_burst`, so each
refusal names its field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from cloudgw.model.fields import Name, StrictModel

Url = Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9._~:\[\]/%?&=+,-]{1,400}$")]
"""http(s) only, no user:password@ (the character set leaves out '@')"""
CloudRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")]
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=1000)]

SIGNAL_KINDS = ("prometheus", "http", "pool", "cpu")


class Signal(StrictModel):
    """Where demand is read. `prometheus`: an instant query (`url` of the server, `query` in PromQL)
    whose first sample is the demand; `http`: a URL that answers one number; `pool`: the used share
    (0-1) of a private pool's addresses, from the mapping; `cpu`: the private site's CPU busy share
    (0-1) from a node exporter's metrics over the last `window` seconds, through the Prometheus at
    `url` (`instance` picks one machine; without it, every CPU it scrapes is averaged)."""

    kind: Literal["prometheus", "http", "pool", "cpu"]
    url: Url | None = None
    query: PromQL | None = None
    pool: Name | None = None
    instance: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\[\]-]{1,100}$")] | None = None
    window: int = Field(60, ge=5, le=3600, description="cpu: seconds the busy share is averaged over")
    timeout: float = Field(5.0, gt=0, le=30, description="seconds to wait for an answer")


class Budget(StrictModel):
    """At most this much: instance-hours in a UTC day, and/or a cost per hour (from `price_per_hour`
    of the template's size, a price table the admin keeps in the policy)."""

    instance_hours_per_day: float | None = Field(None, gt=0, le=1_000_000)
    max_cost_per_hour: float | None = Field(None, gt=0, le=1_000_000)
    prices: dict[CloudRef, Annotated[float, Field(ge=0, le=100_000)]] = Field(
        default_factory=dict, max_length=100, description="price per hour of each size, e.g. {t3.small: 0.0208}"
    )


class Template(StrictModel):
    """The VM to launch, in the site's cloud: image and size (instance type or flavour), optional
    key pair and the admin's cloud-init user-data."""

    image: CloudRef
    size: CloudRef
    key_name: CloudRef | None = None
    user_data: Annotated[str, StringConstraints(max_length=16_384)] = ""


class BurstSpec(StrictModel):
    """A burst policy, as the API and the topology file carry it."""

    name: Name
    network: Name
    site: Name = Field(description="the public site the VMs are launched at, through its provider")
    pool: Name | None = Field(None, description="the site's pool the VMs take addresses from (default: its only one)")
    signal: Signal
    scale_out_above: float = Field(description="demand above this for `warmup` seconds adds `step` VMs")
    scale_in_below: float = Field(description="demand below this for `cooldown` seconds removes `step` VMs")
    min_vms: int = Field(0, ge=0, le=1000)
    max_vms: int = Field(ge=0, le=1000)
    step: int = Field(1, ge=1, le=100)
    warmup: float = Field(60.0, ge=0, le=86_400, description="seconds above the threshold before adding VMs")
    cooldown: float = Field(300.0, ge=0, le=86_400, description="seconds below the threshold before removing VMs")
    budget: Budget = Field(default_factory=Budget)
    template: Template
    drain_hook: Url | None = Field(None, description="POSTed {vm, ip} before a VM is removed")
    drain_grace: float = Field(30.0, ge=0, le=3600, description="seconds between the drain hook and the removal")
    enabled: bool = True


SIGNAL_NEEDS: dict[str, tuple[str, ...]] = {
    "prometheus": ("url", "query"),
    "http": ("url",),
    "pool": ("pool",),
    "cpu": ("url",),
}
