"""The mapping service: endpoints, resolve, validate; tokens; audit; status; a gateway's document."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from cloudgw.api import schemas
from cloudgw.controller import agents, auth
from cloudgw.controller.db.models import AuditRow, GatewayRow, TokenRow
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.mapping.core import conflicts, resolve, validate_source
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


def _token_view(row: TokenRow, gateways: dict[int, str]) -> schemas.TokenPublic:
    return schemas.TokenPublic(
        id=row.id,
        name=row.name,
        role=row.role,
        gateway=gateways.get(row.gateway_id) if row.gateway_id else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked=row.revoked,
    )


@router.get("/tokens", response_model=schemas.TokenList, summary="List tokens (never their secrets)")
def list_tokens(state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.admin)) -> Any:
    with state.session() as session:
        gateways = {g.id: g.name for g in session.scalars(select(GatewayRow))}
        items = [_token_view(row, gateways) for row in session.scalars(select(TokenRow).order_by(TokenRow.name))]
    return schemas.TokenList(items=items, total=len(items))


@router.post(
    "/tokens", response_model=schemas.TokenCreated, status_code=201, summary="Create a token; its text is shown once"
)
def create_token(
    body: schemas.TokenCreate,
    request: Request,
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.admin),
) -> Any:
    row, text = agents.create_token(state, who.name, body)
    view = _token_view(row, {row.gateway_id: body.gateway} if row.gateway_id and body.gateway else {})
    url = request.app.state.settings.public_url if body.role == "join" else None
    return schemas.TokenCreated(**view.model_dump(), token=text, controller_url=url)


@router.delete("/tokens/{name}", status_code=204, response_class=Response, summary="Delete (revoke) a token")
def delete_token(
    name: str, state: State = Depends(auth.get_state), who: auth.Principal = Depends(auth.admin)
) -> Response:
    agents.delete_token(state, who.name, name)
    return Response(status_code=204)


@router.get("/audit", response_model=schemas.AuditList, summary="Who changed what, newest first")
def audit(
    limit: int = Query(100, ge=1, le=1000),
    kind: str | None = None,
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    with state.session() as session:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if kind:
            query = query.where(AuditRow.kind == kind)
        items = [schemas.AuditPublic.model_validate(row, from_attributes=True) for row in session.scalars(query)]
    return schemas.AuditList(items=items, total=len(items))
