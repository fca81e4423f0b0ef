"""The mapping service: endpoints, resolve, validate, and a gateway's document."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from fastapi import APIRouter, Depends, Query

from cloudgw.api import schemas
from cloudgw.controller import auth
from cloudgw.controller.pages import PageParams, next_cursor, page_params
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.mapping.listing import EndpointQuery, EndpointState
from cloudgw.mapping.resolve import resolve, validate_source
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


def _prefix(text: str | None) -> IPv4Network | None:
    if text is None:
        return None
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidInput(
            [
                Problem(
                    "prefix", f"'{text}' is not an IPv4 prefix", "write an address or ADDRESS/LENGTH, e.g. 10.1.0.0/16"
                )
            ],
            what="query",
        ) from None


@router.get(
    "/endpoints",
    response_model=schemas.EndpointList,
    summary="The mapping: announced endpoints in address order, a page at a time, filtered on the server",
)
def list_endpoints(
    network: str | None = Query(None, max_length=64, description="only this network"),
    site: str | None = Query(None, max_length=64, description="only endpoints behind this site's gateways"),
    gateway: str | None = Query(None, max_length=64, description="only this gateway's announcements"),
    prefix: str | None = Query(None, max_length=18, description="only addresses in this prefix, e.g. 192.168.1.0/28"),
    state_filter: EndpointState | None = Query(
        None, alias="state", description="effective (in the mapping) or ignored (announced outside the site's pools)"
    ),
    q: str | None = Query(None, max_length=64, description="a substring of the address or the MAC, any case"),
    page: PageParams = Depends(page_params),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    snap = state.snapshot()
    index = snap.index
    query = EndpointQuery(network, site, gateway, _prefix(prefix), state_filter, q or None)
    found = state.endpoint_listing.page(index, query, page.after("endpoints", (str, int, str)), page.limit)
    items = [
        schemas.EndpointPublic(
            network=a.network,
            ip=str(a.ip),
            mac=a.mac,
            gateway=a.gateway,
            site=index.site_of.get(a.gateway, ""),
            first_seen=a.first_seen,
            last_seen=a.last_seen,
            effective=index.is_effective(a),
        )
        for a in found.items
    ]
    conflicting = [
        {"network": n, "ip": str(IPv4Address(ip)), "gateways": gws}
        for n, ip, gws in state.endpoint_listing.conflicts(index)
        if not network or n == network
    ]
    return schemas.EndpointList(
        items=items, total=found.total, next_cursor=next_cursor("endpoints", found.next_key), conflicts=conflicting
    )


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
