"""One router factory for every configuration resource, so each gets the same five operations,
status codes, auth and error shapes. (No `from __future__ import annotations` here: FastAPI reads the
closures' annotations, which refer to this factory's arguments.)"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from cloudgw.controller import auth, resources
from cloudgw.controller.state import State


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
) -> APIRouter:
    router = APIRouter(prefix=f"/api/v1/{path}", tags=[path])

    def one(request: Request, state: State, name: str) -> Any:
        with state.session() as session:
            from sqlalchemy import select

            row = session.scalar(select(row_model).where(row_model.name == name))
        if row is None:
            from cloudgw.errors import NotFound

            raise NotFound(kind, name)
        return view(request, state, [row])[0]

    @router.get("", response_model=list_schema, summary=f"List {path}")
    def list_items(
        request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
    ) -> Any:
        items = view(request, state, resources.rows(state, row_model))
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
