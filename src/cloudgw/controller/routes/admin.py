"""Tokens and the audit log: who may call, and who changed what."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select

from cloudgw.api import schemas
from cloudgw.controller import auth, gateway_calls
from cloudgw.controller.db.models import AuditRow, GatewayRow, TokenRow
from cloudgw.controller.pages import PageParams, next_cursor, page_params
from cloudgw.controller.state import State
from cloudgw.model.paging import MAX_CURSOR, MAX_LIMIT

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


@router.get("/tokens", response_model=schemas.TokenList, summary="List tokens (never their secrets), by name")
def list_tokens(
    role: Literal["admin", "readonly", "join"] | None = Query(None, description="only tokens of this role"),
    q: str | None = Query(None, max_length=64, description="a substring of the name, any case"),
    page: PageParams = Depends(page_params),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.admin),
) -> Any:
    query = select(TokenRow).order_by(TokenRow.name)
    if role:
        query = query.where(TokenRow.role == role)
    if q:
        query = query.where(TokenRow.name.icontains(q, autoescape=True))
    after = page.after("tokens", (str,))
    with state.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if after is not None:
            query = query.where(TokenRow.name > after[0])
        rows = list(session.scalars(query.limit(page.limit + 1 if page.limit else None)))
        gateways = {
            g.id: g.name
            for g in session.scalars(select(GatewayRow).where(GatewayRow.id.in_({r.gateway_id for r in rows})))
        }
    more = page.limit is not None and len(rows) > page.limit
    rows = rows[: page.limit] if page.limit else rows
    return schemas.TokenList(
        items=[_token_view(row, gateways) for row in rows],
        total=total,
        next_cursor=next_cursor("tokens", (rows[-1].name,) if more else None),
    )


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


@router.get("/audit", response_model=schemas.AuditList, summary="Who changed what, newest first, a page at a time")
def audit(
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description="rows in this page"),
    cursor: str | None = Query(None, max_length=MAX_CURSOR, description="the next_cursor of the previous page"),
    kind: str | None = Query(None, max_length=32, description="only changes of this kind (site, gateway, ...)"),
    actor: str | None = Query(None, max_length=128, description="only changes by this token"),
    name: str | None = Query(None, max_length=128, description="only changes of the object with this name"),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    query = select(AuditRow).order_by(AuditRow.id.desc())
    for column, value in ((AuditRow.kind, kind), (AuditRow.actor, actor), (AuditRow.name, name)):
        if value:
            query = query.where(column == value)
    before = PageParams(limit, cursor).after("audit", (int,))
    with state.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if before is not None:
            query = query.where(AuditRow.id < before[0])
        rows = list(session.scalars(query.limit(limit + 1)))
        items = [schemas.AuditPublic.model_validate(row, from_attributes=True) for row in rows[:limit]]
    more = len(rows) > limit
    return schemas.AuditList(
        items=items, total=total, next_cursor=next_cursor("audit", (items[-1].id,) if more else None)
    )
