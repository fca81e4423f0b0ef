"""The mapping service: endpoints, resolve, validate, and a gateway's document."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from fastapi import APIRouter, Depends, Query

from cloudgw.api import schemas
from cloudgw.controller import auth
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.mapping.resolve import conflicts, resolve, validate_source
from cloudgw.model.document import dump_document

router = APIRouter(prefix="/api/v1", tags=["mapping"])


def _address(text: str, field: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise InvalidInput([Problem(field, f"'{text}' is not an IPv4 address")], what="query") from None


def _network(state: State, name: str) -> None:
    if name not in state.snapshot().topo.networks:
        raise NotFound("network", name)


@router.get("/endpoints", response_model=schemas.EndpointList, summary="The mapping: every announced endpoint")
def list_endpoints(
    network: str | None = None,
    site: str | None = None,
    gateway: str | None = None,
    q: str | None = Query(None, description="substring of the IP or MAC"),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    snap = state.snapshot()
    topo = snap.topo
    items = []
    for (net, ip, gw), announcement in sorted(
        topo.announcements.items(), key=lambda i: (i[0][0], int(i[0][1]), i[0][2])
    ):
        owner_site = topo.gateways[gw].site if gw in topo.gateways else ""
        if (network and net != network) or (gateway and gw != gateway) or (site and owner_site != site):
            continue
        if q and q not in str(ip) and q not in (announcement.mac or ""):
            continue
        items.append(
            schemas.EndpointPublic(
                network=net,
                ip=str(ip),
                mac=announcement.mac,
                gateway=gw,
                site=owner_site,
                first_seen=announcement.first_seen,
                last_seen=announcement.last_seen,
                effective=snap.index.is_effective(announcement),
            )
        )
    found = [
        {"network": n, "ip": str(ip), "gateways": gws} for n, ip, gws in conflicts(topo) if not network or n == network
    ]
    return schemas.EndpointList(items=items, total=len(items), conflicts=found)


@router.get("/mapping/resolve", response_model=schemas.Resolution, summary="Where does this address live?")
def resolve_address(
    network: str, ip: str, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
) -> Any:
    _network(state, network)
    return schemas.Resolution(**vars(resolve(state.snapshot().topo, network, _address(ip, "ip"))))


@router.get(
    "/mapping/validate", response_model=schemas.Validation, summary="May this source address arrive from this gateway?"
)
def validate(
    gateway: str,
    source: str,
    network: str | None = None,
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    topo = state.snapshot().topo
    if gateway not in topo.gateways:
        raise NotFound("gateway", gateway)
    if network is not None:
        _network(state, network)
    allowed, reason = validate_source(topo, gateway, _address(source, "source"), network)
    return schemas.Validation(gateway=gateway, source=source, allowed=allowed, reason=reason)


@router.get("/gateways/{name}/document", summary="The desired-state document the gateway follows")
def gateway_document(
    name: str, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
) -> Any:
    return dump_document(state.document(name))
