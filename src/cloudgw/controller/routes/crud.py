"""One router factory for every configuration resource, so each gets the same five operations,
status codes, auth and error shapes. (No `from __future__ import annotations` here: FastAPI reads the
closures' annotations, which refer to this factory's arguments.)"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from cloudgw.controller import auth
from cloudgw.controller.config_writes import Created
from cloudgw.controller.pages import PageParams, next_cursor, page_params
from cloudgw.controller.routes import filters as filters_module
from cloudgw.controller.state import Snapshot, State
from cloudgw.errors import NotFound
from cloudgw.model.paging import Key, page_of


def _by_name(name: str) -> Key:
    return (name,)


Fetch = Callable[[State, list[str]], list[Any]]
View = Callable[[Request, State, Snapshot, list[Any]], list[Any]]  # rows -> public items, at a snapshot


def rows_by_name(row_model: Any) -> Fetch:
    """Fetch the rows with these names from a table with a `name` column, sorted by name."""

    def fetch(state: State, names: list[str]) -> list[Any]:
        if not names:
            return []
        query = select(row_model).where(row_model.name.in_(names)).order_by(row_model.name)
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
    create: Callable[[State, str, Any], Created],
    update: Callable[..., Any],
    delete: Callable[..., Any],
    view: View,
    filters: Any,
    matching: filters_module.Matcher,
    cascade: bool = False,
    fetch: Fetch | None = None,
) -> APIRouter:
    router = APIRouter(prefix=f"/api/v1/{path}", tags=[path])
    fetch_items = fetch or rows_by_name(row_model)

    def one(request: Request, state: State, name: str) -> Any:
        rows = fetch_items(state, [name])  # then the snapshot: at least as new as the rows
        found = view(request, state, state.snapshot(), rows)
        if not found:
            raise NotFound(kind, name)
        return found[0]

    def answer(request: Request, state: State, created: Created) -> Any:
        """The new object as the write left it: its inserted row at the snapshot the write made,
        without reading either back (each read was a database round trip, a fifth of a pool
        create's time at 10,000 pools). Read back when that snapshot is gone already (a later write
        replaced it) or the resource's rows are fetched its own way."""
        if fetch is not None:
            return one(request, state, created.obj.name)
        snap = state.cached_snapshot(created.revision)
        row = next((r for r in created.rows if isinstance(r, row_model) and r.name == created.obj.name), None)
        if row is not None and snap is not None and snap.revision == created.revision:
            found = view(request, state, snap, [row])
            if found:
                return found[0]
        return one(request, state, created.obj.name)

    @router.get("", response_model=list_schema, summary=f"List {path}, a page at a time, by name")
    def list_items(
        request: Request,
        chosen: filters = Depends(),
        page: PageParams = Depends(page_params),
        state: State = Depends(auth.get_state),
        _who: auth.Principal = Depends(auth.reader),
    ) -> Any:
        snap = state.snapshot()
        names = matching(state, snap, chosen, float(request.app.state.settings.offline_after))
        found = page_of(names, _by_name, page.after(path, (str,)), page.limit)
        items = view(request, state, snap, fetch_items(state, found.items))
        return list_schema(items=items, total=found.total, next_cursor=next_cursor(path, found.next_key))

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
        response.headers["Location"] = f"/api/v1/{path}/{created.obj.name}"
        return answer(request, state, created)

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
