"""One router factory for every configuration resource, so each gets the same five operations,
status codes, auth and error shapes. (No `from __future__ import annotations` here: FastAPI reads the
closures' annotations, which refer to this factory's arguments.)"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from cloudgw.controller import auth
from cloudgw.controller.state import State
from cloudgw.errors import NotFound


def rows_by_name(row_model: Any) -> Callable[[State, str | None], list[Any]]:
    """Fetch rows of a table with a `name` column: all of them, or the one with that name."""

    def fetch(state: State, name: str | None) -> list[Any]:
        query = select(row_model).order_by(row_model.name)
        if name is not None:
            query = query.where(row_model.name == name)
        with state.session() as session:
            return list(session.scalars(query))

    return fetch


def crud_router(
    kind: str,
    path: str,
    row_model: Any,
    create_schema: Any,
    update_schema: Any,
    public_schema: Any,
    list_schema: Any,
    create: Callable[..., Any],
    update: Callable[..., Any],
    delete: Callable[..., Any],
    view: Callable[[Request, State, list[Any]], list[Any]],
    cascade: bool = False,
    fetch: Callable[[State, str | None], list[Any]] | None = None,
) -> APIRouter:
    router = APIRouter(prefix=f"/api/v1/{path}", tags=[path])
    fetch_items = fetch or rows_by_name(row_model)

    def one(request: Request, state: State, name: str) -> Any:
        found = view(request, state, fetch_items(state, name))
        if not found:
            raise NotFound(kind, name)
        return found[0]

    @router.get("", response_model=list_schema, summary=f"List {path}")
    def list_items(
        request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
    ) -> Any:
        items = view(request, state, fetch_items(state, None))
        return list_schema(items=items, total=len(items))

    @router.get("/{name}", response_model=public_schema, summary=f"Show one {kind}")
    def get_item(
        name: str, request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
    ) -> Any:
        return one(request, state, name)

    @router.post("", response_model=public_schema, status_code=201, summary=f"Create a {kind}")
    def create_item(
        body: create_schema,
        request: Request,
        response: Response,  # type: ignore[valid-type]
        state: State = Depends(auth.get_state),
        who: auth.Principal = Depends(auth.admin),
    ) -> Any:
        created = create(state, who.name, body)
        response.headers["Location"] = f"/api/v1/{path}/{created.name}"
        return one(request, state, created.name)

    @router.patch("/{name}", response_model=public_schema, summary=f"Update a {kind}")
    def update_item(
        name: str,
        body: update_schema,
        request: Request,  # type: ignore[valid-type]
        state: State = Depends(auth.get_state),
        who: auth.Principal = Depends(auth.admin),
    ) -> Any:
        updated = update(state, who.name, name, body)
        return one(request, state, updated.name)

    if cascade:

        @router.delete("/{name}", status_code=204, response_class=Response, summary=f"Delete a {kind}")
        def delete_cascading(
            name: str,
            cascade: bool = Query(False, description="also delete what uses it"),
            state: State = Depends(auth.get_state),
            who: auth.Principal = Depends(auth.admin),
        ) -> Response:
            delete(state, who.name, name, cascade)
            return Response(status_code=204)
    else:

        @router.delete("/{name}", status_code=204, response_class=Response, summary=f"Delete a {kind}")
        def delete_item(
            name: str, state: State = Depends(auth.get_state), who: auth.Principal = Depends(auth.admin)
        ) -> Response:
            delete(state, who.name, name)
            return Response(status_code=204)

    return router
