"""Tokens and the audit log: who may call, and who changed what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from cloudgw.api import schemas
from cloudgw.controller import auth, gateway_calls
from cloudgw.controller.db.models import AuditRow, GatewayRow, TokenRow
from cloudgw.controller.state import State

router = APIRouter(prefix="/api/v1", tags=["tokens and audit"])


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
    row, text = gateway_calls.create_token(state, who.name, body)
    view = _token_view(row, {row.gateway_id: body.gateway} if row.gateway_id and body.gateway else {})
    url = request.app.state.settings.public_url if body.role == "join" else None
    return schemas.TokenCreated(**view.model_dump(), token=text, controller_url=url)


@router.delete("/tokens/{name}", status_code=204, response_class=Response, summary="Delete (revoke) a token")
def delete_token(
    name: str, state: State = Depends(auth.get_state), who: auth.Principal = Depends(auth.admin)
) -> Response:
    gateway_calls.delete_token(state, who.name, name)
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
